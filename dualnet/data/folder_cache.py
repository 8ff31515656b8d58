"""An image folder decoded once into an HDF5 file: `convert_folder` (`dualnet data convert`) and
`folder_cache` (the cached conversion `dn.data.load("photos/", ...)` reads).

The file holds groups ``train`` and (when there is test data) ``test``, each with ``images`` uint8
(N, C, H, W) chunked by rows for streaming and ``labels`` int64, plus root attributes: ``class_names``
and ``image_preparation`` (JSON), ``num_classes``, ``cache_key``, ``source``, ``skipped`` (JSON list of
the first unreadable files) and ``skipped_count``, and ``validation`` when the folder has a ``val/``
part (its images are the last ``validation`` records of ``train``, which the reader holds out).

Splits: a folder with train/ (test/, val/) subfolders keeps them. A folder of class subfolders holds
out a stratified `test_fraction` of each class as ``test`` (default DEFAULT_TEST_FRACTION; seeded by
SPLIT_SEED, not by the run's seed, so runs with different seeds share one test set), and at least one
image of each class stays in ``train``. Training records are stored interleaved by class (a seeded
stratified order), so the trailing records a run holds out as its validation split hold every class
in proportion.

The cache: `cache_root()/folders/<folder name>-<options key>-<content key>.h5`, where the content key
is a SHA-256 of every image file's relative path, size and modification time and the preparation
options. It is reused while they match; a changed, added or removed file, or other options, make a
new one (the one it replaces is removed). Conversion decodes in worker processes (one per CPU core
by default), reports progress, and writes through `written_atomically`, so an interrupted conversion
(Ctrl-C) leaves no file that could be taken for a cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import pathlib
import signal
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .atomic import written_atomically
from .folders import FolderScan, scan_folder
from .locations import cache_root
from .photo import PREPARATION, decode_photo

__all__ = ["DEFAULT_IMAGE_SIZE", "DEFAULT_TEST_FRACTION", "FolderOptions", "convert_folder", "folder_cache"]

DEFAULT_IMAGE_SIZE = (32, 32)  # CIFAR's size: what the colour recipe's models are built and measured for
DEFAULT_TEST_FRACTION = 0.2
SPLIT_SEED = 0
FORMAT_VERSION = 1
MAX_IMAGE_SIDE = 1024
SHOW_SKIPPED = 5  # unreadable files named in the message; the count covers the rest
_CHUNK_BYTES = 1 << 20  # about this many bytes of images per HDF5 chunk
_BATCH = 16  # images a worker decodes per task
_MIN_PARALLEL = 64  # fewer images are decoded in this process (starting workers costs more)

Progress = Callable[[int, int], None]
Report = Callable[[str], None]


@dataclass(frozen=True)
class FolderOptions:
    """How a folder's images are prepared: `image_size` (height, width), `channels` (1, 3 or None:
    RGB if any image has colour, else gray) and the held-out `test_fraction` (folders without test/)."""

    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE
    channels: int | None = None
    test_fraction: float = DEFAULT_TEST_FRACTION

    def __post_init__(self) -> None:
        size = tuple(self.image_size)
        if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_IMAGE_SIDE
                                     for v in size):
            raise DataError(f"image size must be two integers in [1, {MAX_IMAGE_SIDE}] (height, width), "
                            f"got {self.image_size!r}")
        object.__setattr__(self, "image_size", size)
        if self.channels not in (None, 1, 3):
            raise DataError(f"channels must be 1, 3 or None (RGB if any image has colour), got {self.channels!r}")
        if not isinstance(self.test_fraction, (int, float)) or not 0 <= self.test_fraction < 1:
            raise DataError(f"test fraction must be a number in [0, 1), got {self.test_fraction!r}")

    def key(self) -> dict:
        return {"version": FORMAT_VERSION, "size": list(self.image_size), "channels": self.channels,
                "test_fraction": float(self.test_fraction), "split_seed": SPLIT_SEED, "preparation": PREPARATION}


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def default_progress(label: str) -> Progress:
    """A progress printer on stderr: a line rewritten in place on a terminal, else every quarter."""
    tty = sys.stderr.isatty()
    shown = [-1]

    def show(done: int, total: int) -> None:
        if tty:
            end = "\n" if done == total else ""
            print(f"\r{label}: {done:,}/{total:,} images", end=end, file=sys.stderr, flush=True)
        elif done * 4 // max(total, 1) > shown[0]:
            shown[0] = done * 4 // max(total, 1)
            print(f"{label}: {done:,}/{total:,} images", file=sys.stderr, flush=True)
    return show


def folder_cache(folder: str | os.PathLike, options: FolderOptions | None = None, strict: bool = False,
                 processes: int | None = None, progress: Progress | None = None,
                 report: Report | None = _stderr) -> pathlib.Path:
    """The cached conversion of image folder `folder` (made now if missing or stale): its path.

    strict: refuse (DataError) a folder with an unreadable image instead of skipping it, also when
    the cache was made without strict. report: where the one-line notes go (None: nowhere).
    """
    options = options or FolderOptions()
    folder = pathlib.Path(folder)
    scan = scan_folder(folder)
    digest = scan.digest(options.key())
    where = hashlib.sha256(json.dumps([os.path.realpath(folder), options.key()]).encode()).hexdigest()[:12]
    stem = f"{_safe_name(folder)}-{where}"
    out = cache_root() / "folders" / f"{stem}-{digest[:16]}.h5"
    if _holds(out, digest):
        if strict:
            _refuse_skipped(out, folder)
        return out
    if report is not None:
        report(f"{folder}: decoding {scan.count:,} images once into the cache {out} (reused while the folder "
               "is unchanged)")
    convert_scan(scan, options, out, digest, strict, processes,
                 progress or default_progress(f"converting {folder}"), report)
    for old in out.parent.glob(f"{stem}-*.h5"):  # the conversions this one replaces
        if old != out:
            with contextlib.suppress(OSError):
                old.unlink()
    return out


def convert_folder(folder: str | os.PathLike, out: str | os.PathLike, options: FolderOptions | None = None,
                   strict: bool = False, processes: int | None = None, progress: Progress | None = None,
                   report: Report | None = _stderr) -> dict:
    """Convert image folder `folder` into the HDF5 file `out` (replaced atomically): its summary
    (counts per split, skipped files, channels). See the module docstring for the layout."""
    options = options or FolderOptions()
    scan = scan_folder(folder)
    return convert_scan(scan, options, pathlib.Path(out), scan.digest(options.key()), strict, processes,
                        progress, report)


def _safe_name(folder: pathlib.Path) -> str:
    name = pathlib.Path(os.path.realpath(folder)).name or "root"
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:40]


def _holds(out: pathlib.Path, digest: str) -> bool:
    """Whether `out` is a complete cache made for `digest` (written whole, so its key is the proof)."""
    if not out.is_file():
        return False
    try:
        import h5py

        with h5py.File(out, "r") as f:
            return f.attrs.get("cache_key") == digest
    except (OSError, KeyError, ValueError):
        return False


def _refuse_skipped(out: pathlib.Path, folder: pathlib.Path) -> None:
    import h5py

    with h5py.File(out, "r") as f:
        count, names = int(f.attrs.get("skipped_count", 0)), json.loads(f.attrs.get("skipped", "[]"))
    if count:
        raise DataError(f"{folder}: {count} unreadable image(s) ({', '.join(names[:SHOW_SKIPPED])}); --strict "
                        "refuses them: fix or remove them, or drop --strict to skip them")


def assign_splits(scan: FolderScan, test_fraction: float) -> dict[str, list[tuple[str, int]]]:
    """{"train": [...], "val": [...], "test": [...]} of (relative path, label), in storage order:
    train interleaved by class (seeded), val and test by path."""
    rng = np.random.default_rng(SPLIT_SEED)
    parts = {k: list(v) for k, v in scan.parts.items()}
    if "all" in parts:
        train, test = [], []
        items = parts.pop("all")
        for label in range(len(scan.class_names)):
            members = [it for it in items if it[1] == label]
            n_test = min(len(members) - 1, round(test_fraction * len(members)))
            chosen = set(rng.permutation(len(members))[:max(0, n_test)].tolist())
            test += [m for i, m in enumerate(members) if i in chosen]
            train += [m for i, m in enumerate(members) if i not in chosen]
        parts = {"train": train, "test": test}
    train = parts["train"]
    # class c's k-th record (in a seeded order) gets the key (k + u) / n_c: sorted by key, every
    # stretch of the order holds each class in proportion, within one record
    keys = np.empty(len(train))
    labels = np.array([lab for _, lab in train])
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        keys[where[rng.permutation(len(where))]] = (np.arange(len(where)) + rng.random(len(where))) / len(where)
    parts["train"] = [train[i] for i in np.argsort(keys, kind="stable")]
    return {k: parts.get(k, []) for k in ("train", "val", "test")}


def _decode_batch(task: tuple[str, list[str], tuple[int, int], int | None]) -> list:
    """Worker: [(pixels uint8 (C, H, W) or None, has_colour, error or None)] for the batch's files."""
    root, names, size, channels = task
    out = []
    for name in names:
        try:
            pixels, colour = decode_photo(os.path.join(root, name), size, channels)
            out.append((pixels, colour, None))
        except DataError as exc:
            out.append((None, False, str(exc).split(": ", 1)[-1]))
    return out


def _quiet_worker() -> None:
    # Ctrl-C reaches the whole process group; the parent alone handles it (and stops the workers)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _decoded(root: str, names: list[str], size, channels, processes: int | None):
    """Yield each file's (pixels, colour, error), in order, decoding in worker processes."""
    tasks = [(root, names[i:i + _BATCH], size, channels) for i in range(0, len(names), _BATCH)]
    if processes is None:
        processes = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if processes <= 1 or len(names) < _MIN_PARALLEL:
        for task in tasks:
            yield from _decode_batch(task)
        return
    # fork: a spawned worker would re-run the caller's __main__ (a script without a main guard, or
    # stdin); the workers only decode with Pillow and never touch a lock a parent's thread may hold
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: fork in a threaded process
        pool = multiprocessing.get_context(method).Pool(min(processes, len(tasks)), initializer=_quiet_worker)
    try:
        for batch in pool.imap(_decode_batch, tasks):
            yield from batch
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def convert_scan(scan: FolderScan, options: FolderOptions, out: pathlib.Path, digest: str, strict: bool,
                 processes: int | None, progress: Progress | None, report: Report | None) -> dict:
    """Decode `scan`'s images into HDF5 file `out` (see the module docstring); the summary."""
    import h5py

    splits = assign_splits(scan, options.test_fraction)
    # val goes after train in the train group: decoded in this order, each group is written front to back
    order = [("train" if part == "val" else part, part, name, label)
             for part in ("train", "val", "test") for name, label in splits[part]]
    size, total = options.image_size, len(order)
    kept: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    skipped: list[str] = []
    any_colour = False
    with written_atomically(out) as tmp:
        with h5py.File(tmp, "w") as f:
            sizes = {"train": len(splits["train"]) + len(splits["val"]), "test": len(splits["test"])}
            sets = {g: _image_set(f, f"{g}/images", n, 1 if options.channels == 1 else 3, size)
                    for g, n in sizes.items() if n}
            rows = dict.fromkeys(sets, 0)
            for i, (pixels, colour, error) in enumerate(_decoded(str(scan.root), [o[2] for o in order], size,
                                                                 options.channels, processes)):
                group, part, name, label = order[i]
                if pixels is None:
                    if strict:
                        raise DataError(f"{scan.root / name}: {error}; --strict refuses unreadable images: fix or "
                                        "remove it, or drop --strict to skip it")
                    skipped.append(f"{name} ({error})")
                else:
                    sets[group][rows[group]] = pixels
                    rows[group] += 1
                    kept[part].append(label)
                    any_colour = any_colour or colour
                if progress is not None:
                    progress(i + 1, total)
            if not kept["train"]:
                raise DataError(f"{scan.root}: no training image could be decoded ({len(skipped)} unreadable)")
            for group, ds in sets.items():
                ds.resize(rows[group], axis=0)
                parts = ("train", "val") if group == "train" else ("test",)
                f.create_dataset(f"{group}/labels", data=np.array([x for p in parts for x in kept[p]], np.int64))
            channels = options.channels or (3 if any_colour else 1)
            _attributes(f, scan, options, digest, kept, skipped, channels)
        if channels != sets_channels(options):
            _one_plane(tmp)
    summary = {"train": len(kept["train"]), "val": len(kept["val"]), "test": len(kept["test"]),
               "skipped": len(skipped), "skipped_files": skipped[:SHOW_SKIPPED], "channels": channels,
               "image_size": list(size), "classes": list(scan.class_names), "out": str(out)}
    if report is not None:
        if skipped:
            report(f"{scan.root}: skipped {len(skipped)} unreadable image(s) of {total:,}: "
                   + "; ".join(skipped[:SHOW_SKIPPED]) + (" ..." if len(skipped) > SHOW_SKIPPED else "")
                   + " (--strict refuses them instead)")
        if scan.other_files or scan.outside_links:
            report(f"{scan.root}: ignored {len(scan.other_files)} file(s) that are not images and "
                   f"{len(scan.outside_links)} symbolic link(s) leading out of the folder")
    return summary


def sets_channels(options: FolderOptions) -> int:
    """The planes decoded: 1 for channels=1, else 3 (RGB, reduced afterwards for an all-gray folder)."""
    return 1 if options.channels == 1 else 3


def _image_set(f, name: str, n: int, c: int, size: tuple[int, int]):
    rows = max(1, min(n, _CHUNK_BYTES // (c * size[0] * size[1])))
    return f.create_dataset(name, shape=(n, c, *size), maxshape=(None, c, *size), dtype=np.uint8,
                            chunks=(rows, c, *size))


def _attributes(f, scan: FolderScan, options: FolderOptions, digest: str, kept: dict[str, list[int]],
                skipped: list[str], channels: int) -> None:
    f.attrs["class_names"] = json.dumps(list(scan.class_names))
    f.attrs["num_classes"] = len(scan.class_names)
    f.attrs["image_preparation"] = json.dumps({"size": list(options.image_size), "channels": channels,
                                               "method": PREPARATION})
    f.attrs["source"] = os.path.realpath(scan.root)
    f.attrs["skipped"] = json.dumps(skipped[:100])
    f.attrs["skipped_count"] = len(skipped)
    if kept["val"]:
        f.attrs["validation"] = len(kept["val"])
    f.attrs["cache_key"] = digest


def _one_plane(path: pathlib.Path) -> None:
    """Rewrite HDF5 file `path` with only the first plane of its images: an all-gray folder decoded as
    RGB has three equal planes, each equal to the luminance."""
    import h5py

    with written_atomically(path) as tmp, h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
        for group in src:
            images = src[f"{group}/images"]
            n, _, h, w = images.shape
            ds = _image_set(dst, f"{group}/images", n, 1, (h, w))
            for lo in range(0, n, ds.chunks[0]):
                ds[lo:lo + ds.chunks[0]] = images[lo:lo + ds.chunks[0], :1]
            dst.create_dataset(f"{group}/labels", data=src[f"{group}/labels"][()])
        for key, value in src.attrs.items():
            dst.attrs[key] = value
