"""Files the data layer writes (folder caches, converted datasets) appear whole or not at all, through
the project's guarded writer (dualnet.outputs).

`written_atomically(path)` yields a fresh temporary path beside `path` (dualnet.outputs.replacing:
created O_EXCL|O_NOFOLLOW under an unpredictable name, the target checked first: never a directory,
FIFO or device, never an input of the running command); when the block ends normally the temporary is
flushed to disk and moved over `path` in one os.replace, and when it ends by any exception (Ctrl-C
included) the temporary is removed. A reader therefore sees the old file or the complete new one.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Iterator

from ..errors import DataError

__all__ = ["PARTIAL_SUFFIX", "written_atomically"]

PARTIAL_SUFFIX = ".partial"


@contextlib.contextmanager
def written_atomically(path: str | os.PathLike, what: str = "dataset file") -> Iterator[pathlib.Path]:
    """A temporary path to write `path`'s new content to; moved over `path` on success."""
    from ..outputs import OutputError, output_folder, replacing

    path = pathlib.Path(path)
    try:
        output_folder(path.parent, "folder of the " + what)
    except OutputError as exc:
        raise DataError(f"{path}: cannot write here: {exc}; choose another location "
                        "(or set XDG_CACHE_HOME for the cache)") from None
    with replacing(path, what, durable=True) as tmp:
        yield tmp
