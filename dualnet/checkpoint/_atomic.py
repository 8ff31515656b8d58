"""Atomic file replacement: write beside the target, then rename onto it in one step.

A reader, or a crash at any moment, sees either the previous file or the complete new one,
never a mixture. Shared by checkpoints (writer.save) and pictures (dualnet.plots.save_figure);
callers turn the OSError this lets through into their own error.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
from collections.abc import Iterator


@contextlib.contextmanager
def replacing(path: pathlib.Path, durable: bool = False) -> Iterator[pathlib.Path]:
    """Yield a temporary path `.{name}.tmp-{pid}-{random}` beside `path` (its folder created) for
    the body to write and close; on success os.replace it onto `path`.

    On any exception, KeyboardInterrupt included, the temporary file is removed and the exception
    propagates unchanged. durable=True also fsyncs the file before the rename and the folder
    after it, so the new content survives a power cut, not only a crash of this process.
    """
    # hidden, and named by pid and a random token so that concurrent writers never collide
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        if durable:
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    if durable:
        try:  # make the rename itself durable; folders cannot be opened everywhere (Windows)
            _fsync(path.parent, folder=True)
        except OSError:
            pass


def _fsync(path: pathlib.Path, folder: bool = False) -> None:
    fd = os.open(path, (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) if folder else os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
