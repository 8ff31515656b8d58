"""What an untrusted file may make dualnet open: only itself, and only if it is a regular file.

`regular_file` refuses FIFOs, devices, sockets and directories from one os.stat, before any
open(): opening a FIFO blocks until a writer appears, reading a device never ends. An HDF5 file
can make the library read other files: datasets with external storage (raw bytes of any file,
`/etc/passwd` or a FIFO), external links (another HDF5 file) and virtual datasets (mapped from
other files; a missing source reads as silent fill values). `h5_check_contained` walks the whole
file through its links without following any, before anything is read, and refuses each of
these, naming the dataset or link, and any filter that is not built into HDF5 (`check_filters`).
Shared by the data readers and the checkpoint reader.
"""

from __future__ import annotations

import os
import pathlib
import stat
from collections.abc import Callable
from typing import Any

from ..errors import DataError

__all__ = ["MAX_H5_OBJECTS", "allowed_filters", "check_filters", "file_kind", "h5_check_contained", "regular_file"]

# A walk over more links than this is refused: a 1 MB file holds a few tens of thousands at most
MAX_H5_OBJECTS = 100_000
_MAX_DEPTH = 64
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))

Fail = Callable[[str], Exception]


def file_kind(mode: int) -> str:
    """What an st_mode describes, in words ("a FIFO (named pipe)", "a regular file", ...)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def regular_file(path: str | os.PathLike, what: str = "file", fail: Fail | None = None) -> pathlib.Path:
    """`path` if it names an existing regular file (symbolic links followed); else raise.

    Raises `fail(problem)` (default: DataError "{path}: {problem}") saying why it cannot be read
    ("cannot read: No such file or directory") or what the path is instead (a FIFO, a directory,
    a device), without opening it.
    """
    path = pathlib.Path(path)
    fail = fail or (lambda problem: DataError(f"{path}: {problem}"))
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise fail(f"cannot read: it is {file_kind(mode)}, not a regular {what}; give a regular file (copy "
                   "a pipe's content to a file first)")
    return path


def h5_check_contained(f: Any, fail: Fail) -> None:
    """Raise fail(problem) if HDF5 file `f` (open, nothing read yet) reaches outside itself.

    Every link from the root is inspected without being followed (`get(name, getlink=True)`):
    external links and user-defined links are refused; soft links must resolve, through hard
    links only, to an object inside the file; every dataset must keep its data inside the file
    (no external storage, not virtual). Cost: one metadata lookup per link, at most MAX_H5_OBJECTS.
    """
    import h5py

    seen: set[Any] = set()
    count = 0

    def walk(group: Any, depth: int) -> None:
        nonlocal count
        if depth > _MAX_DEPTH:
            raise fail(f"group {group.name} is nested deeper than {_MAX_DEPTH} levels; not read")
        for name in group:
            count += 1
            if count > MAX_H5_OBJECTS:
                raise fail(f"holds more than {MAX_H5_OBJECTS:,} links; not read")
            where = f"{group.name.rstrip('/')}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise fail(f"{where} is an external link to {link.filename}:{link.path}; links to other "
                           "files are refused")
            if isinstance(link, h5py.SoftLink):
                _check_soft(f if str(link.path).startswith("/") else group, link.path, where, fail)
                continue  # its target is a hard-linked object, walked where it lives
            if not isinstance(link, h5py.HardLink):
                raise fail(f"{where} is a {type(link).__name__}, a link type that is refused")
            obj = group[name]
            key = _address(obj)
            if key in seen:
                continue
            seen.add(key)
            if isinstance(obj, h5py.Dataset):
                _check_dataset(obj, where, fail)
            elif isinstance(obj, h5py.Group):
                walk(obj, depth + 1)

    walk(f, 0)


def allowed_filters() -> dict[int, str]:
    """{filter id: name} of the filters accepted from an untrusted file: those built into HDF5 and
    h5py (gzip, shuffle, fletcher32, lzf; szip where this HDF5 has it). Any other id would make HDF5
    search its plugin folder for a library to load and run."""
    import h5py

    z = h5py.h5z
    allowed = {z.FILTER_DEFLATE: "gzip", z.FILTER_SHUFFLE: "shuffle", z.FILTER_FLETCHER32: "fletcher32",
               z.FILTER_LZF: "lzf"}
    if z.filter_avail(z.FILTER_SZIP):
        allowed[z.FILTER_SZIP] = "szip"
    return allowed


def check_filters(ds: Any, where: str, fail: Fail) -> None:
    """Raise fail(problem) if dataset `ds` declares a filter outside `allowed_filters()`; read from
    its creation properties (metadata), before any of its data is read."""
    plist = ds.id.get_create_plist()
    allowed = allowed_filters()
    for i in range(plist.get_nfilters()):
        code, _, _, name = plist.get_filter(i)
        if code not in allowed:
            label = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
            raise fail(f"dataset {where} uses filter {code}{f' ({label})' if label else ''}, which is not one of "
                       f"HDF5's built-in filters ({', '.join(sorted(allowed.values()))}); refused before reading, "
                       "so no filter plugin is searched for or loaded: rewrite the file with gzip or lzf")


def _address(obj: Any) -> Any:
    """An identity of the object inside its file (hard links can make a group reachable twice)."""
    import h5py

    return h5py.h5o.get_info(obj.id).addr


def _check_dataset(ds: Any, where: str, fail: Fail) -> None:
    check_filters(ds, where, fail)
    if ds.is_virtual:
        raise fail(f"dataset {where} is a virtual dataset (its data is mapped from other files); refused")
    if ds.id.get_create_plist().get_external_count() > 0:
        raise fail(f"dataset {where} keeps its data in external files (HDF5 external storage); refused")


def _check_soft(start: Any, target: bytes | str, where: str, fail: Fail) -> None:
    """A soft link may only name, through hard links from `start` (the root, or the link's group
    for a relative link), an object of this file."""
    import h5py

    text = target.decode("utf-8", "replace") if isinstance(target, bytes) else str(target)
    node = start
    for part in [p for p in text.split("/") if p and p != "."]:
        # get(getlink=True) only looks the link up: `in` or [] would follow an external link
        link = node.get(part, getlink=True) if isinstance(node, h5py.Group) else None
        if link is None:
            raise fail(f"{where} is a soft link to {text!r}, which does not exist in the file")
        if not isinstance(link, h5py.HardLink):
            raise fail(f"{where} is a soft link to {text!r}, which passes through another link; refused")
        node = node[part]
