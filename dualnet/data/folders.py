"""What an image folder holds: its layout, classes, image files and their fingerprint.

Two layouts are read (those of torchvision's ImageFolder and Keras's image_dataset_from_directory):

    photos/cat/*.jpg, photos/dog/*.png, ...                 one subfolder per class
    photos/train/<class>/..., photos/test/<class>/...       and optionally photos/val/<class>/...

The second is recognised when the folder's subfolders are `train` plus `test` and/or `val` and
nothing else. Class ids follow the sorted class folder names. Images may sit in nested folders
below their class folder. Files are tried as images by suffix (`photo.IMAGE_SUFFIXES`, any case);
other files and every hidden name (starting with ".") are skipped; a symbolic link is followed only
when its target lies inside the folder (a link out of it is skipped and counted), and a folder
reached twice through links is read once.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from dataclasses import dataclass, field

from ..errors import DataError
from .photo import IMAGE_SUFFIXES

__all__ = ["SPLIT_FOLDERS", "FolderScan", "looks_like_image_folder", "scan_folder"]

SPLIT_FOLDERS = ("train", "test", "val")
_IDX_PREFIXES = ("train-images", "train-labels", "t10k-", "test-images", "test-labels")


@dataclass
class FolderScan:
    """An image folder's content. parts: {"all"} (one subfolder per class) or {"train", "test",
    "val"} (those present) -> [(path relative to root, label)] in sorted path order."""

    root: pathlib.Path
    class_names: tuple[str, ...]
    parts: dict[str, list[tuple[str, int]]]
    fingerprint: list[tuple[str, int, int]]  # (relative path, size, mtime_ns) of every image file
    other_files: list[str] = field(default_factory=list)
    outside_links: list[str] = field(default_factory=list)

    def digest(self, options: dict) -> str:
        """SHA-256 (hex) of the file list, sizes, modification times and the preparation `options`."""
        text = json.dumps({"files": self.fingerprint, "options": options}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.parts.values())


def looks_like_image_folder(path: pathlib.Path) -> bool:
    """True when `path` (a directory) holds no IDX files but at least one visible subfolder."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return False
    if any(e.name.startswith(_IDX_PREFIXES) for e in entries):
        return False
    return any(not e.name.startswith(".") and e.is_dir() for e in entries)


def scan_folder(root: str | os.PathLike) -> FolderScan:
    """Scan image folder `root` (see the module docstring). Raises DataError, in one line with the
    fix, for a folder without class subfolders, with a single class, with an empty class or with no
    images at all."""
    root = pathlib.Path(root)
    real_root = pathlib.Path(os.path.realpath(root))
    walker = _Walker(root, real_root)
    top = walker.subfolders(root)
    if not top:
        raise DataError(f"{root}: no class subfolders; put the images in one subfolder per class "
                        "(photos/cat/*.jpg, photos/dog/*.jpg) or in train/<class>/ and test/<class>/")
    names = sorted(top)
    split_layout = "train" in names and set(names) <= set(SPLIT_FOLDERS) and len(names) > 1
    if split_layout:
        classes = sorted(walker.subfolders(root / "train"))
        _check_classes(root / "train", classes)
        parts = {part: walker.part(root / part, classes, part, strict_classes=True)
                 for part in SPLIT_FOLDERS if part in names}
    else:
        _check_classes(root, names)
        classes = names
        parts = {"all": walker.part(root, classes, "", strict_classes=False)}
    for part, items in parts.items():
        if not items:
            raise DataError(f"{root / part}: no images (looked for {', '.join(IMAGE_SUFFIXES)}); add images "
                            f"or remove the folder")
    walker.fingerprint.sort()
    return FolderScan(root, tuple(classes), parts, walker.fingerprint, walker.other_files, walker.outside_links)


def _check_classes(where: pathlib.Path, classes: list[str]) -> None:
    if len(classes) < 2:
        found = f"only one class folder ({classes[0]!r})" if classes else "no class folders"
        raise DataError(f"{where}: {found}; a classifier needs at least two classes, one subfolder each")


class _Walker:
    """Walks class folders without leaving the root's real path (symbolic links checked)."""

    def __init__(self, root: pathlib.Path, real_root: pathlib.Path):
        self.root, self.real_root = root, real_root
        self.fingerprint: list[tuple[str, int, int]] = []
        self.other_files: list[str] = []
        self.outside_links: list[str] = []
        self.seen_dirs: set[str] = set()

    def inside(self, path: str) -> bool:
        real = os.path.realpath(path)
        return real == str(self.real_root) or real.startswith(str(self.real_root) + os.sep)

    def subfolders(self, folder: pathlib.Path) -> list[str]:
        """Visible subfolder names of `folder` (links out of the root skipped)."""
        out = []
        for e in _entries(folder):
            if e.name.startswith(".") or not e.is_dir():
                continue
            if e.is_symlink() and not self.inside(e.path):
                self.outside_links.append(self.rel(e.path))
                continue
            out.append(e.name)
        return out

    def rel(self, path: str) -> str:
        return os.path.relpath(path, self.root)

    def part(self, folder: pathlib.Path, classes: list[str], part: str,
             strict_classes: bool) -> list[tuple[str, int]]:
        """[(relative path, label)] of the images under folder/<class> for every class, sorted;
        refuses an empty class folder, and (strict_classes) a class folder not among `classes`."""
        present = sorted(self.subfolders(folder))
        unknown = [c for c in present if c not in classes]
        if strict_classes and unknown:
            raise DataError(f"{folder}: class folder {unknown[0]!r} is not among the training classes "
                            f"({', '.join(classes)}); rename or remove it")
        items: list[tuple[str, int]] = []
        for label, name in enumerate(classes):
            if name not in present:
                continue
            found: list[str] = []
            self.walk(folder / name, found)
            if not found:
                raise DataError(f"{folder / name}: no images in this class folder (looked for "
                                f"{', '.join(IMAGE_SUFFIXES)}); add images or remove the folder")
            items += [(p, label) for p in sorted(found)]
        return items

    def walk(self, folder: pathlib.Path, found: list[str]) -> None:
        real = os.path.realpath(folder)
        if real in self.seen_dirs:
            return
        self.seen_dirs.add(real)
        for e in sorted(_entries(folder), key=lambda e: e.name):
            if e.name.startswith("."):
                continue
            if e.is_symlink() and not self.inside(e.path):
                self.outside_links.append(self.rel(e.path))
                continue
            if e.is_dir():
                self.walk(pathlib.Path(e.path), found)
                continue
            if not e.is_file():  # a FIFO, device or socket is never opened
                self.other_files.append(self.rel(e.path))
                continue
            if os.path.splitext(e.name)[1].lower() not in IMAGE_SUFFIXES:
                self.other_files.append(self.rel(e.path))
                continue
            st = e.stat()
            rel = self.rel(e.path)
            found.append(rel)
            self.fingerprint.append((rel, st.st_size, st.st_mtime_ns))


def _entries(folder: pathlib.Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError as exc:
        raise DataError(f"{folder}: cannot list the folder: {exc.strerror or exc}") from None
