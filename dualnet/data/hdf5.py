"""An HDF5 file of images and labels as a Dataset (layout: see the dualnet.data.sources docstring).

h5py is imported on first use, so `import dualnet.data` does not load it.
"""

from __future__ import annotations

import math
import pathlib

import numpy as np

from ..errors import DataError
from .dataset import Dataset, MissingTestSplit, _checked, _checked_labels, _count, _infer_classes, _rows
from .files import h5_check_contained, regular_file
from .limits import check_working_set, h5_check_size, h5_check_stored
from .streaming import StreamDataset, check_stream_layout

# a streamed split keeps its file open without a chunk cache: its reader groups each batch's rows
# by chunk itself (dualnet.data.streaming), and a cache would read a whole chunk for a single row
STREAM_CHUNK_CACHE_BYTES = 0


def _load_hdf5(path: pathlib.Path, split, validation, limit, num_classes, stream: bool = False,
               label: str | None = None) -> Dataset:
    """`label`: the name the dataset goes by (default: the path; an image folder's cache: the folder)."""
    try:
        import h5py
    except ImportError:
        raise DataError(f"{path}: reading HDF5 needs h5py: pip install h5py") from None
    regular_file(path, "HDF5 file")
    try:
        f = h5py.File(path, "r", **({"rdcc_nbytes": STREAM_CHUNK_CACHE_BYTES} if stream else {}))
    except OSError as exc:
        raise DataError(f"{path}: cannot open as HDF5: {_open_problem(exc)}") from None
    try:
        # before any dataset is looked up: a lookup can follow an external link
        h5_check_contained(f, lambda problem: DataError(f"{path}: {problem}"))
        if stream:
            opened = _open_split(f, path, split, validation, limit, num_classes, whole=False)
            return StreamDataset(f, *opened, name=f"{label or path}:{split}")  # it keeps the file open
        with f:
            return _read_hdf5(f, path, split, validation, limit, num_classes, label)
    except DataError:
        f.close()
        raise
    except (OSError, KeyError, RuntimeError, TypeError, ValueError) as exc:  # damaged beyond our checks
        f.close()
        raise DataError(f"{path}: damaged or unreadable HDF5 file ({type(exc).__name__}: {exc})") from None


def _read_hdf5(f, path: pathlib.Path, split, validation, limit, num_classes, label=None) -> Dataset:
    images_ds, labels, rows, num_classes = _open_split(f, path, split, validation, limit, num_classes, whole=True)
    images, labels, num_classes = _checked(images_ds[rows], labels, num_classes, f"{path}:{images_ds.name}",
                                           f"{path}:{split} labels")
    return Dataset._from_checked(images, labels, f"{label or path}:{split}", num_classes)


def _open_split(f, path: pathlib.Path, split, validation, limit, num_classes, whole: bool):
    """(images dataset, the split's labels int64 (checked), its rows, num_classes) from the file's
    metadata and labels alone: no image is read. `whole`: the split is to be loaded into memory, so
    the size caps for whole loads apply (a streamed one is read batch by batch)."""
    flat = "images" in f or "labels" in f
    group = "test" if split == "test" else "" if flat else "train"
    if group and group not in f:
        hint = "top-level images/labels or a 'train' group" if group == "train" else \
            "a 'test' group with images and labels"
        raise (MissingTestSplit if group == "test" else DataError)(
            f"{path}: no '{group}' group for split {split!r}; expected {hint}")
    images_ds = _h5_dataset(f, path, f"{group}/images" if group else "images")
    labels_ds = _h5_dataset(f, path, f"{group}/labels" if group else "labels")
    images_from, labels_from = f"{path}:{images_ds.name}", f"{path}:{labels_ds.name}"
    if images_ds.ndim not in (3, 4):
        raise DataError(f"{images_from}: images have shape {images_ds.shape}; expected "
                        "(N, H, W) or (N, C, H, W)")
    if labels_ds.ndim != 1:
        raise DataError(f"{labels_from}: labels have shape {labels_ds.shape}; expected (N,)")
    # dtypes and sizes come from the file's metadata: refuse before reading anything
    if images_ds.dtype != np.uint8 and images_ds.dtype.kind != "f":
        raise DataError(f"{images_from}: images have dtype {images_ds.dtype}; expected uint8 "
                        "(0..255) or float in [0, 1]")
    if labels_ds.dtype.kind not in "iu":
        raise DataError(f"{labels_from}: labels have dtype {labels_ds.dtype}; expected "
                        "integers")
    if len(images_ds) != len(labels_ds):
        raise DataError(f"{path}: {images_ds.name} holds {len(images_ds)} images but "
                        f"{labels_ds.name} holds {len(labels_ds)} labels")
    if validation is None and "validation" in f.attrs:  # an image folder's val/ part (dualnet.data.folder_cache)
        validation = _count(f.attrs["validation"], f"{path}: attribute validation")
    rows = _rows(split, len(images_ds), validation, limit, images_from)
    if whole:
        h5_check_size(images_ds, images_from, rows=rows.stop - rows.start)
        check_working_set((rows.stop - rows.start) * math.prod(images_ds.shape[1:]), images_ds.dtype.itemsize,
                          images_ds.id.get_storage_size(), images_from)
    else:
        h5_check_stored(images_ds, images_from)
        check_stream_layout(images_ds, images_from)
    h5_check_size(labels_ds, labels_from)
    if num_classes is None and "num_classes" in f.attrs:
        num_classes = _count(f.attrs["num_classes"], f"{path}: attribute num_classes", 1)
    if num_classes is None:
        names = [n for n in ("labels", "train/labels", "test/labels") if _is_dataset(f, n)]
        for n in names:
            h5_check_size(f[n], f"{path}:/{n}")
        num_classes = _infer_classes([f[n][()] for n in names])
    # the labels are checked here (they are small); the images by whoever reads them
    labels, num_classes = _checked_labels(labels_ds[rows], num_classes, rows.stop - rows.start, images_from,
                                          labels_from)
    return images_ds, labels, rows, num_classes


def _open_problem(exc: OSError) -> str:
    """h5py's OSError in words; a file another process holds open for writing is locked, not damaged."""
    text = str(exc)
    if "unable to lock file" in text.lower():
        return ("it is locked by another process that is writing it (HDF5 file locking); wait until that "
                f"process has finished ({text})")
    return text


def _is_dataset(f, name: str) -> bool:
    import h5py

    return isinstance(f.get(name), h5py.Dataset)


def _h5_dataset(f, path, name: str):
    if not _is_dataset(f, name):
        raise DataError(f"{path}: missing dataset '/{name}' (need 'images' and 'labels')")
    return f[name]
