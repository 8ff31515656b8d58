"""A directory of MNIST-style IDX files (the bundled MNIST included) as a Dataset."""

from __future__ import annotations

import math
import os
import pathlib

from ..errors import DataError
from .dataset import Dataset, MissingTestSplit, _checked, _infer_classes, _rows
from .files import regular_file
from .idx import _gzip_trailer, read_idx, read_idx_header
from .limits import check_working_set


def _load_idx(folder: pathlib.Path, label: str, split, validation, limit, num_classes) -> Dataset:
    part = "test" if split == "test" else "train"
    images_path = _find_idx(folder, part, "images")
    labels_path = _find_idx(folder, part, "labels")
    # Headers first: a count or rank mismatch fails before 47 MB are decompressed.
    image_dtype, image_dims = read_idx_header(images_path)
    _, label_dims = read_idx_header(labels_path)
    if len(image_dims) not in (3, 4):
        raise DataError(f"{images_path}: images have shape {image_dims}; expected (N, H, W) or "
                        "(N, C, H, W)")
    if len(label_dims) != 1:
        raise DataError(f"{labels_path}: labels have shape {label_dims}; expected (N,)")
    if image_dims[0] != label_dims[0]:
        raise DataError(f"{images_path} holds {image_dims[0]} images but {labels_path} holds "
                        f"{label_dims[0]} labels")
    rows = _rows(split, image_dims[0], validation, limit, images_path)
    # the whole file is inflated, whatever the rows kept; a gzip trailer that promises less than
    # the header is a truncated file, which the reader reports after inflating what is there
    elements = math.prod(image_dims)
    isize, stored = _gzip_trailer(images_path)
    with open(images_path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    if gzipped and isize is not None and isize < elements * image_dtype.itemsize:
        elements = isize // image_dtype.itemsize
    check_working_set(elements, image_dtype.itemsize, stored, images_path)
    labels = read_idx(labels_path)
    if num_classes is None:
        other = _find_idx(folder, "train" if part == "test" else "test", "labels", required=False)
        num_classes = _infer_classes([labels] + ([read_idx(other)] if other else []))
    images, labels, num_classes = _checked(read_idx(images_path)[rows], labels[rows],
                                           num_classes, images_path, labels_path)
    return Dataset._from_checked(images, labels, f"{label}:{split}", num_classes)


def _find_idx(folder: pathlib.Path, part: str, kind: str, required: bool = True):
    prefixes = ("train",) if part == "train" else ("t10k", "test")
    ranks = ("idx3", "idx4") if kind == "images" else ("idx1",)
    names = [f"{prefix}-{kind}{sep}{rank}-ubyte{gz}" for prefix in prefixes for rank in ranks
             for sep in "-." for gz in ("", ".gz")]
    for name in names:
        if os.path.lexists(folder / name):
            return regular_file(folder / name, "IDX file")
    if not required:
        return None
    raise (MissingTestSplit if part == "test" else DataError)(
        f"{folder}: no {part} {kind} file; looked for {names[0]} and variants ({', '.join(names[1:])})")
