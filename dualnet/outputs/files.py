"""Writing a checked target: unpredictable O_EXCL|O_NOFOLLOW temporaries, atomic (durable) replacement,
stale temporaries of killed writers, and bounded reading of an earlier output."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from typing import IO

from .guard import OutputError, _kind, check_target, refuse

# no writer of a checkpoint, log or picture takes this long: a temporary file this old is abandoned
STALE_SECONDS = 600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)


def _temp_name(path: pathlib.Path) -> str:
    # the name part is shortened so the temporary's name stays within the usual 255 bytes
    return f".{path.name[:180]}.tmp-{os.getpid()}-{secrets.token_hex(8)}"


def _create_temp(path: pathlib.Path) -> tuple[int, pathlib.Path]:
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY
    for _ in range(100):
        tmp = path.with_name(_temp_name(path))
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # 64 random bits: only a planted name gets here; draw another
            continue
    raise FileExistsError(f"{path.parent}: 100 random temporary names were all taken")


@contextlib.contextmanager
def replacing(path: str | os.PathLike, what: str = "output", durable: bool = False,
              check: Callable[[pathlib.Path], None] | None = None) -> Iterator[pathlib.Path]:
    """Yield the path of a new, empty temporary file beside `path` (created O_EXCL|O_NOFOLLOW, its
    folder created) for a library that writes by file name; when the block ends the temporary is
    checked by `check(tmp)` (if given) and renamed onto `path`. Prefer `writing` (a file object).

    On any exception, KeyboardInterrupt included, the temporary is removed and the exception
    propagates; OSError (full disk, permissions) passes unchanged for the caller to word.
    """
    path = check_target(path, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    fd, tmp = _create_temp(path)
    os.close(fd)
    try:
        yield tmp
        _finish(tmp, path, what, durable, check)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    if durable:
        _fsync_folder(path.parent)


@contextlib.contextmanager
def writing(path: str | os.PathLike, what: str = "output", durable: bool = False,
            check: Callable[[pathlib.Path], None] | None = None) -> Iterator[IO[bytes]]:
    """Yield a binary file (read-write) whose content replaces `path` atomically when the block ends.

    `what` names the output in refusals ("checkpoint", "CSV log"); durable=True fsyncs the file and
    the folder; `check(tmp)` runs on the complete temporary before the rename (raise to keep the
    previous file). See `replacing` for errors.
    """
    path = check_target(path, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "w+b") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        _finish(tmp, path, what, False, check)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    if durable:
        _fsync_folder(path.parent)


def _finish(tmp: pathlib.Path, path: pathlib.Path, what: str, durable: bool,
            check: Callable[[pathlib.Path], None] | None) -> None:
    if check is not None:
        check(tmp)
    if durable:
        _fsync(tmp)
    check_target(path, what)  # the target may have become a FIFO or device while we wrote
    os.replace(tmp, path)


def write_bytes(path: str | os.PathLike, data: bytes, what: str = "output", durable: bool = False) -> pathlib.Path:
    """Replace `path` with `data` through `writing`; returns the path."""
    with writing(path, what, durable) as f:
        f.write(data)
    return pathlib.Path(path)


def write_text(path: str | os.PathLike, text: str, what: str = "output", durable: bool = False) -> pathlib.Path:
    """Replace `path` with `text` (UTF-8) through `writing`; returns the path."""
    return write_bytes(path, text.encode("utf-8"), what, durable)


def output_folder(path: str | os.PathLike, what: str = "output folder") -> pathlib.Path:
    """Check `path` as a folder dualnet writes new files into (an input folder, or a path that is a
    file, FIFO or device, is refused) and create it; returns it."""
    path = check_target(path, what, folder=True)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise refuse(what, path, exc.strerror or str(exc)) from None
    return path


def resumable(path: str | os.PathLike, what: str = "partial download") -> IO[bytes]:
    """Open `path`, a partial file kept between attempts (a download resumed with a Range request),
    for reading and writing, creating it. The same target checks as `writing` come first, and the
    file is opened with O_NOFOLLOW and must be a regular file: a link planted at that fixed name
    cannot make dualnet write elsewhere."""
    path = check_target(path, what)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        raise refuse(what, path, exc.strerror or str(exc)) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise refuse(what, path, "not a regular file")
    return os.fdopen(fd, "r+b")


def publish(done: str | os.PathLike, path: str | os.PathLike, what: str = "output") -> pathlib.Path:
    """Rename the complete file `done` (written in a private folder on the target's file system)
    onto `path` after the same checks as `writing`; returns `path`."""
    path = check_target(path, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(done, path)
    return path


def readable_output(path: str | os.PathLike, what: str, max_bytes: int) -> bytes | None:
    """The content of an earlier output dualnet reads back (a CSV log on --resume): None if it does
    not exist; OutputError if it is not a regular file (a FIFO would block the open) or larger than
    `max_bytes`. Opened without following a final symbolic link's swap: the file checked is read."""
    path = pathlib.Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"cannot read {what} {path}: it is {_kind(st.st_mode)}, not a regular file; "
                          "choose another path")
    if st.st_size > max_bytes:
        raise OutputError(f"cannot read {what} {path}: it holds {st.st_size:,} bytes, more than the "
                          f"{max_bytes:,} such a file reaches; choose another path")
    fd = os.open(path, os.O_RDONLY | _CLOEXEC | _BINARY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # swapped between the stat and the open
            raise OutputError(f"cannot read {what} {path}: it is not a regular file; choose another path")
        return f.read(max_bytes + 1)[:max_bytes]


def remove_stale(path: str | os.PathLike) -> list[pathlib.Path]:
    """Remove the temporary files of earlier writers of `path` that died before renaming them
    (their process is gone, or the file is older than STALE_SECONDS); returns those removed."""
    path = pathlib.Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name[:180])}\.tmp-(\d+)-[0-9a-f]{{8,32}}")
    removed: list[pathlib.Path] = []
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
    except OSError:
        return True  # someone else's live process
    return True


def _fsync(path: pathlib.Path) -> None:
    fd = os.open(path, os.O_RDWR | _NOFOLLOW | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: pathlib.Path) -> None:
    """Make a rename in `folder` durable; folders cannot be opened everywhere (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)



def probe_writable(path: str | os.PathLike, what: str = "output") -> pathlib.Path:
    """Check now that `path` can be written later (the checks of `writing`, its folder created, and
    a temporary created and removed beside it); OutputError naming the reason otherwise."""
    path = check_target(path, what)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temp(path)
        os.close(fd)
        os.remove(tmp)
    except OSError as exc:
        raise refuse(what, path, exc.strerror or str(exc)) from None
    return path


@contextlib.contextmanager
def scratch_folder(beside: str | os.PathLike) -> Iterator[pathlib.Path]:
    """A private folder (mode 0700, unpredictable name) in folder `beside`, removed with its content
    when the block ends: for tools that write files themselves (a compiler), whose result is then
    placed with `publish`."""
    import shutil
    import tempfile

    beside = pathlib.Path(beside)
    beside.mkdir(parents=True, exist_ok=True)
    folder = pathlib.Path(tempfile.mkdtemp(prefix=".build-", dir=beside))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
