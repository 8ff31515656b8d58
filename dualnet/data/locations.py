"""Where dualnet keeps what it derives or downloads: the user cache.

`cache_root()` is `$XDG_CACHE_HOME/dualnet`, else `~/.cache/dualnet` (the XDG base directory rule).
Image folders' conversions go to its `folders/` subfolder, named datasets to `<name>/`.
"""

from __future__ import annotations

import os
import pathlib

__all__ = ["cache_root"]


def cache_root() -> pathlib.Path:
    """The user cache folder of dualnet (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME")
    # the XDG rule: a relative value is invalid and ignored
    root = pathlib.Path(base) if base and os.path.isabs(base) else pathlib.Path.home() / ".cache"
    return root / "dualnet"
