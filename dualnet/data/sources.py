"""Where datasets come from: the bundled MNIST, the 8x8 digits, any directory of IDX files, or an HDF5 file.

Sources accepted by `load`:

* ``"mnist"``: the IDX files bundled with dualnet (see `bundled_mnist_dir`).
* ``"fashion-mnist"`` and ``"cifar10"``: found locally or downloaded, verified (dualnet.data.named).
* a folder of photos in one subfolder per class (or train/ test/ [val/] subfolders), decoded once
  into a cached HDF5 file (dualnet.data.folder_cache).
* ``"digits"``: the 1,797 8x8 handwritten digits (1,437 train / 360 test), from scikit-learn when
  it is installed, else the bundled copy of the same arrays (dualnet.data.digits_source).
* a directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each optionally ``.gz``, with
  ``-`` or ``.`` before ``idx`` (``train-images.idx3-ubyte``); ``test-`` may replace ``t10k-``
  and images may be ``idx4`` (N, C, H, W).
* an HDF5 file with datasets ``images`` and ``labels`` at the top level (split into train/val
  here) and/or groups ``train`` and ``test`` each holding ``images`` and ``labels``. An
  integer attribute ``num_classes`` on the file root is honoured.

Images may be uint8 (divided by 255) or float (kept, but must be finite and in [0, 1]), of shape
(N, H, W) or (N, C, H, W). Splits: "train" is the training data minus its last `validation`
records (default: a sixth of them, at most 10,000), "val" those last records, "all-train" all of it,
"test" the test data.

Shapes, dtypes and sizes are checked from a file's header or metadata before anything is read
(see dualnet.data.limits and dualnet.data.idx): a damaged or hostile file raises DataError naming it.

This module picks the reader for a source; `Dataset` and its checks live in dualnet.data.dataset,
the readers in idx_source and hdf5.
"""

from __future__ import annotations

import importlib.resources
import os
import pathlib
import stat

from ..errors import DataError
from . import named
from .dataset import Dataset, MissingTestSplit, _count
from .digits_source import _load_digits
from .files import file_kind
from .folder_cache import DEFAULT_IMAGE_SIZE, DEFAULT_TEST_FRACTION, FolderOptions, folder_cache
from .folders import looks_like_image_folder
from .hdf5 import _load_hdf5
from .idx_source import _load_idx

__all__ = ["SPLITS", "NAMED_SOURCES", "bundled_mnist_dir", "load", "load_mnist", "load_test_or_none"]

SPLITS = ("train", "val", "test", "all-train")
# names that mean a bundled or named dataset (dualnet.data.named), never a path
NAMED_SOURCES = ("mnist", "digits", "fashion-mnist", "cifar10")
_IN_MEMORY = ("mnist", "digits", "fashion-mnist")  # read from IDX files or arrays: no streaming
MNIST_NUM_CLASSES = 10
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HDF5_SUFFIXES = (".h5", ".hdf5", ".he5")


def bundled_mnist_dir() -> pathlib.Path:
    """The folder of the MNIST IDX files shipped with dualnet.

    From the installed package ``dualnet_data`` when present, else ``data/mnist`` of the source
    checkout this module lives in. Raises DataError, with a fix, when neither holds the files.
    """
    looked = []
    try:
        candidate = importlib.resources.files("dualnet_data") / "mnist"
    except (ImportError, TypeError):
        candidate = None
    # A zipped install yields a non-filesystem Traversable; the IDX reader needs real paths.
    if isinstance(candidate, pathlib.Path):
        if _holds_mnist(candidate):
            return candidate
        looked.append(str(candidate))
    # this file is dualnet/data/sources.py: the checkout root is three levels up
    checkout = pathlib.Path(__file__).resolve().parents[2] / "data" / "mnist"
    if _holds_mnist(checkout):
        return checkout
    looked.append(str(checkout))
    raise DataError(
        "the bundled MNIST files are missing (looked in " + ", ".join(looked) + "); reinstall "
        "dualnet from a complete checkout (`pip install .`), or pass a directory of IDX files "
        "or an HDF5 file instead of 'mnist'"
    )


def _holds_mnist(folder: pathlib.Path) -> bool:
    return (folder / "train-images-idx3-ubyte.gz").is_file()


def load_mnist(split: str = "train", validation: int | None = None, limit: int | None = None) -> Dataset:
    """The bundled MNIST split: same as ``load("mnist", split, validation, limit)``."""
    return load("mnist", split, validation=validation, limit=limit)


def load(source: str | os.PathLike = "mnist", split: str = "train", validation: int | None = None,
         limit: int | None = None, num_classes: int | None = None, stream: bool = False,
         image_size: tuple[int, int] | None = None, channels: int | None = None,
         test_fraction: float | None = None, strict: bool = False) -> Dataset:
    """Load one split of a dataset as a `Dataset` (images float32 (N, C, H, W) in [0, 1]).

    source: "mnist", "digits", a directory of IDX files or an HDF5 file (see the module docstring);
    the strings "mnist" and "digits" always mean the bundled data (write "./mnist" for a folder of
    that name). split: "train", "val", "test" or "all-train". validation: how many trailing
    training records form "val" (None: a sixth of them, at most 10,000). limit: keep only the
    first `limit` records of the split. num_classes: defaults to
    10 for MNIST, else the file's ``num_classes`` attribute or max label + 1 over every label set
    in the source, so all splits agree. stream: for an HDF5 file, leave the images in the file and
    read them batch by batch (a `dualnet.data.streaming.StreamDataset`; shapes, dtypes and labels
    are checked now, pixels as they are read); the whole-split size caps then do not apply.
    image_size, channels, test_fraction, strict: how an image folder is prepared (see
    dualnet.data.folder_cache.FolderOptions; None: the defaults); ignored for other sources.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    validation = None if validation is None else _count(validation, "validation")
    limit = None if limit is None else _count(limit, "limit")
    if num_classes is not None:
        num_classes = _count(num_classes, "num_classes", minimum=1)
    if stream and isinstance(source, str) and source in _IN_MEMORY:
        raise DataError(f"{source}: streaming reads HDF5 files only; the bundled {source} is loaded in memory "
                        "(drop --stream)")
    if isinstance(source, str) and source == "mnist":
        return _load_idx(bundled_mnist_dir(), "mnist", split, validation, limit,
                         num_classes or MNIST_NUM_CLASSES)
    if isinstance(source, str) and source == "digits":
        return _load_digits(split, validation, limit, num_classes)
    if isinstance(source, str) and source == "fashion-mnist":
        return _load_idx(named.locate(source), source, split, validation, limit, num_classes or MNIST_NUM_CLASSES)
    if isinstance(source, str) and source == "cifar10":
        return _load_hdf5(named.named_file(source), split, validation, limit, num_classes, stream, label=source)
    path = pathlib.Path(source).expanduser()
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"{path}: no such file or directory; give 'mnist', a directory of IDX files "
                        "or an .h5/.hdf5 file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode) and looks_like_image_folder(path):
        cache = folder_cache(path, folder_options(image_size, channels, test_fraction), strict=strict)
        return _load_hdf5(cache, split, validation, limit, num_classes, stream, label=str(path))
    if stat.S_ISDIR(mode):
        if stream:
            raise DataError(f"{path}: streaming reads HDF5 files only; a folder of IDX files is loaded in memory "
                            "(drop --stream)")
        return _load_idx(path, str(path), split, validation, limit, num_classes)
    if not stat.S_ISREG(mode):  # never opened: a FIFO would block, a device never end
        raise DataError(f"{path}: is {file_kind(mode)}, not a regular file or a directory; give 'mnist', "
                        "a directory of IDX files or an .h5/.hdf5 file")
    if path.suffix.lower() in _HDF5_SUFFIXES or _starts_with(path, _HDF5_SIGNATURE):
        return _load_hdf5(path, split, validation, limit, num_classes, stream)
    raise DataError(f"{path}: not an HDF5 file; give 'mnist', a directory of IDX files or "
                    "an .h5/.hdf5 file")


def folder_options(image_size: tuple[int, int] | None = None, channels: int | None = None,
                   test_fraction: float | None = None) -> FolderOptions:
    """FolderOptions with None meaning the default of each."""
    return FolderOptions(tuple(image_size) if image_size is not None else DEFAULT_IMAGE_SIZE,  # type: ignore[arg-type]
                         channels, DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction)


def _starts_with(path: pathlib.Path, signature: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(signature)) == signature
    except OSError:
        return False


def load_test_or_none(source: str | os.PathLike, limit: int | None = None,
                      num_classes: int | None = None, stream: bool = False, **prepare) -> Dataset | None:
    """The test split of `source`, or None for data that has none (an HDF5 file with one images set).
    prepare: load's image_size, channels, test_fraction, strict."""
    try:
        return load(source, "test", limit=limit, num_classes=num_classes, stream=stream, **prepare)
    except MissingTestSplit:
        return None
