"""Atomic file replacement: write beside the target, then rename onto it in one step.

A reader, or a crash at any moment, sees either the previous file or the complete new one,
never a mixture. A writer killed outright (SIGKILL, power cut) leaves its hidden temporary file
behind: the next write beside the same target removes those whose writer is gone or that are
older than STALE_SECONDS. Shared by checkpoints (writer.save) and pictures (dualnet.plots.save_figure);
callers turn the OSError this lets through into their own error.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import secrets
import time
from collections.abc import Iterator

# no writer of a checkpoint or picture takes this long: a temporary file this old is abandoned
STALE_SECONDS = 600


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
        remove_stale(path)
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


def remove_stale(path: pathlib.Path) -> list[pathlib.Path]:
    """Remove the temporary files of earlier writers of `path` that died before renaming them
    (their process is gone, or the file is older than STALE_SECONDS); returns those removed."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.tmp-(\d+)-[0-9a-f]{{8}}")
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if not match or not entry.is_file(follow_symlinks=False):
            continue
        try:
            old = time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS
            if old or not _alive(int(match.group(1))):
                os.remove(entry.path)
                removed.append(pathlib.Path(entry.path))
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process
    return True


def _fsync(path: pathlib.Path, folder: bool = False) -> None:
    fd = os.open(path, (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) if folder else os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
