"""Files the data layer writes (folder caches, converted datasets, downloads) appear whole or not at all.

`written_atomically(path)` yields a fresh temporary path beside `path` (created with O_EXCL under an
unpredictable name, so no other file is ever opened through it); when the block ends normally the
temporary is flushed to disk and moved over `path` in one os.replace, and when it ends by any
exception (Ctrl-C included) the temporary is removed. A reader therefore sees the old file or the
complete new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile
from collections.abc import Iterator

from ..errors import DataError

__all__ = ["PARTIAL_SUFFIX", "written_atomically"]

PARTIAL_SUFFIX = ".partial"


@contextlib.contextmanager
def written_atomically(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """A temporary path to write `path`'s new content to; moved over `path` on success."""
    path = pathlib.Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise DataError(f"{path}: cannot write here: {exc.strerror or exc}; choose another location "
                        "(or set XDG_CACHE_HOME for the cache)") from None
    os.close(fd)
    tmp = pathlib.Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
