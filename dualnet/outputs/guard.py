"""Which targets an output may have: the kind checks and the inputs and outputs of one command."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import pathlib
import stat
from collections.abc import Iterable, Iterator

from ..errors import DualnetError

# a hard-linked output is compared with at most this many entries of each input folder (all depths)
_FOLDER_SCAN = 10_000
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class OutputError(DualnetError, ValueError):
    """An output dualnet refuses to write; the message names the file, the reason and the fix.

    `.reason` is the middle part alone and `.fix` the last, for callers that word the fix in their
    own terms (an option's name for "another path"); `.collision` says whether the target is an
    input or another output (else: its kind, or its folder, is wrong)."""

    def __init__(self, message: str, reason: str = "", collision: bool = False, fix: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message
        self.collision = collision
        self.fix = fix or "choose another path"


def refuse(what: str, path: os.PathLike | str, reason: str, fix: str = "choose another path",
           collision: bool = False) -> OutputError:
    """OutputError "cannot write {what} to {path}: {reason}; {fix}"."""
    return OutputError(f"cannot write {what} to {path}: {reason}; {fix}", reason, collision, fix)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


@dataclasses.dataclass
class _Input:
    label: str
    path: pathlib.Path
    dev: int
    ino: int
    folder: bool
    rewritable_by: str | None  # the output role that may replace it (the checkpoint --resume continues)


@dataclasses.dataclass
class _Output:
    role: str
    label: str
    path: pathlib.Path
    real: str


class Command:
    """The inputs and outputs of one command (one CLI invocation, one dn.train_run)."""

    def __init__(self) -> None:
        self.inputs: list[_Input] = []
        self.outputs: list[_Output] = []

    def add_input(self, path: str | os.PathLike, label: str | None = None, rewritable_by: str | None = None) -> None:
        """Remember `path` (a file or folder; one that does not exist is ignored) as an input.
        An input `rewritable_by` a role (the checkpoint `--resume` continues, by "checkpoint") may
        be written by the output declared with that role, and only by it."""
        path = pathlib.Path(path)
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return
        if any((i.dev, i.ino) == (st.st_dev, st.st_ino) and i.rewritable_by == rewritable_by for i in self.inputs):
            return
        folder = stat.S_ISDIR(st.st_mode)
        label = label or f"input {'folder ' if folder else ''}{path}"
        self.inputs.append(_Input(label, path, st.st_dev, st.st_ino, folder, rewritable_by))

    def add_output(self, path: str | os.PathLike, role: str, label: str | None = None,
                   folder: bool = False) -> pathlib.Path:
        """Check `path` as an output (see check_target) and remember it under `role` ("checkpoint",
        "csv-log", ...). The same path declared again for the same role is fine; another role's
        path, or an input, is refused. `label` names it in messages (an option such as --log-csv)."""
        path = pathlib.Path(path)
        label = label or role
        check_target(path, label, folder=folder, inputs=self.inputs, role=role)
        real = os.path.realpath(path)
        for other in self.outputs:
            if other.role == role and other.real == real:
                return path
            if other.real == real or _same_inode(path, other.path):
                raise refuse(label, path, f"it is also the {other.label} of this command and would replace it",
                             "give each output its own path", collision=True)
        self.outputs.append(_Output(role, label, path, real))
        return path

    def role_of(self, path: pathlib.Path) -> str | None:
        """The role `path` was declared with as an output, or None."""
        real = os.path.realpath(path)
        return next((o.role for o in self.outputs if o.real == real), None)


_current: contextvars.ContextVar[Command | None] = contextvars.ContextVar("dualnet_outputs_command", default=None)


def current() -> Command | None:
    """The command whose inputs and outputs are being tracked, or None outside any."""
    return _current.get()


@contextlib.contextmanager
def command() -> Iterator[Command]:
    """Track a command's inputs and outputs; inside one already tracked, that one goes on."""
    active = _current.get()
    if active is not None:
        yield active
        return
    token = _current.set(Command())
    try:
        yield _current.get()  # type: ignore[misc]
    finally:
        _current.reset(token)


def _unchanged(inp: _Input) -> bool:
    """Whether the input's path still holds the file it was declared with. Once dualnet has replaced
    it (the checkpoint --resume continues), its old inode number is free and the file system may give
    it to a new file, such as the best checkpoint: comparing by that number would then refuse a
    legitimate output, so a replaced input is compared by name only."""
    try:
        now = os.stat(inp.path)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (inp.dev, inp.ino)


def declare_input(path: str | os.PathLike | None, label: str | None = None, rewritable_by: str | None = None) -> None:
    """Remember `path` as an input of the current command (nothing outside a command); see
    Command.add_input."""
    active = _current.get()
    if active is not None and path is not None:
        active.add_input(path, label, rewritable_by)


def declare_output(path: str | os.PathLike, role: str, label: str | None = None,
                   folder: bool = False) -> pathlib.Path:
    """Check `path` as an output now (before any work) and, inside a command, remember it."""
    active = _current.get()
    if active is None:
        path = pathlib.Path(path)
        check_target(path, label or role, folder=folder)
        return path
    return active.add_output(path, role, label, folder)


def check_target(path: str | os.PathLike, what: str = "output", folder: bool = False,
                 inputs: Iterable[_Input] | None = None, role: str | None = None) -> pathlib.Path:
    """`path` if dualnet may create or replace it; else OutputError (nothing is opened).

    Refused: an existing target that is not a regular file (or, for `folder`, not a directory,
    symbolic links followed); a file target that is itself a symbolic link (from lstat: replacing
    it would put a regular file in the link's place); a parent that is a file; and any input of
    the current command (or of `inputs`): the same inode, a path inside an input folder, or (hard links) a file of one.
    An input declared rewritable by `role` (default: the role `path` was declared with) is allowed.
    """
    path = pathlib.Path(path)
    want = "directory" if folder else "regular file"
    link = None if folder else _link_target(path)
    try:
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        parent = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
        raise refuse(what, path, f"{parent} is a file, not a folder") from None
    except OSError as exc:
        raise refuse(what, path, exc.strerror or str(exc)) from None
    if st is not None and not (stat.S_ISDIR(st.st_mode) if folder else stat.S_ISREG(st.st_mode)):
        if stat.S_ISDIR(st.st_mode):
            raise refuse(what, path, "it is an existing directory")
        kind = "a regular file" if stat.S_ISREG(st.st_mode) else _kind(st.st_mode)
        raise refuse(what, path, f"it is {kind}, not a {want} (dualnet creates or replaces only {want}s)")
    if st is None:
        for parent in path.parents:
            if parent.exists() or parent.is_symlink():
                if not parent.is_dir():
                    raise refuse(what, path, f"{parent} is a file, not a folder")
                break
    if inputs is None:
        active = _current.get()
        inputs = active.inputs if active is not None else ()
        if role is None and active is not None:
            role = active.role_of(path)
    real = os.path.realpath(path)
    for inp in inputs:
        if inp.rewritable_by is not None and inp.rewritable_by == role:
            continue
        same = st is not None and (st.st_dev, st.st_ino) == (inp.dev, inp.ino) and _unchanged(inp)
        if same or (not inp.folder and real == os.path.realpath(inp.path)):  # (an input replaced since: by name)
            raise refuse(what, path, f"it is the {inp.label} and would replace it", "choose another output path",
                         collision=True)
        if inp.folder:
            if _inside(inp.path, [path], inp) is not None:
                raise refuse(what, path, f"it is inside the {inp.label} and would replace its files or write "
                             "into it", "choose an output path outside it", collision=True)
            if st is not None and not folder and st.st_nlink > 1 and _linked_into(st, inp.path):
                raise refuse(what, path, f"it is a hard link to a file of the {inp.label} and would replace it",
                             "choose another output path", collision=True)
    if link is not None:  # (a link to an input is refused above, as that input)
        # os.replace would put a regular file in the link's place and leave the file it points to as it was
        shown, gone = link
        raise refuse(what, path, f"it is a symbolic link to {shown}{' (which does not exist)' if gone else ''}, "
                     "and dualnet replaces only regular files", f"name the file it points to ({shown}) to write "
                     "there, or choose another path")
    return path


def _link_target(path: pathlib.Path) -> tuple[str, bool] | None:
    """(where the link points, whether that is missing) if `path` itself is a symbolic link (from
    lstat: the final component only, links among its folders are followed), else None."""
    try:
        if not stat.S_ISLNK(os.lstat(path).st_mode):
            return None
    except OSError:
        return None
    real = os.path.realpath(path)
    return real, not os.path.exists(real)


def _same_inode(a: pathlib.Path, b: pathlib.Path) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _inside(folder: pathlib.Path, paths: list[pathlib.Path], inp: _Input | None = None) -> pathlib.Path | None:
    """The first of `paths` that lies inside (or is) `folder`, comparing every existing ancestor's
    inode with the folder's (symbolic links and bind mounts included), else None."""
    try:
        st = os.stat(folder)
    except OSError:
        return None
    ident = (inp.dev, inp.ino) if inp is not None else (st.st_dev, st.st_ino)
    for path in paths:
        real = pathlib.Path(os.path.realpath(path))
        for ancestor in (real, *real.parents):
            try:
                a = os.stat(ancestor)
            except OSError:
                continue
            if (a.st_dev, a.st_ino) == ident:
                return path
    return None


def _linked_into(st: os.stat_result, folder: pathlib.Path) -> bool:
    """Whether a file at any depth of `folder` (class subfolders included) is the inode of `st`: a
    hard link to an input file. At most _FOLDER_SCAN entries are compared; folder links are not
    followed, so a link loop cannot make the scan endless."""
    ident, seen, pending = (st.st_dev, st.st_ino), 0, [folder]
    while pending and seen < _FOLDER_SCAN:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    seen += 1
                    if seen > _FOLDER_SCAN:
                        break
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(pathlib.Path(entry.path))
                            continue
                        e = entry.stat()
                    except OSError:
                        continue
                    if (e.st_dev, e.st_ino) == ident:
                        return True
        except OSError:
            continue
    return False


