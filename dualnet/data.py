"""Datasets: the bundled MNIST, any directory of IDX files or HDF5 file, batching, augmentation.

Everything here is NumPy, whatever the active device: batches move to the device in the
training loop, so loading and shuffling never depend on CuPy.

Sources accepted by `load`:

* ``"mnist"``: the IDX files bundled with dualnet (see `bundled_mnist_dir`).
* a directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each optionally ``.gz``, with
  ``-`` or ``.`` before ``idx`` (``train-images.idx3-ubyte``); ``test-`` may replace ``t10k-``
  and images may be ``idx4`` (N, C, H, W).
* an HDF5 file with datasets ``images`` and ``labels`` at the top level (split into train/val
  here) and/or groups ``train`` and ``test`` each holding ``images`` and ``labels``. An
  integer attribute ``num_classes`` on the file root is honoured.

Images may be uint8 (divided by 255) or float (kept, but must be finite and in [0, 1]), of shape
(N, H, W) or (N, C, H, W). Splits: "train" is the training data minus its last `validation`
records, "val" those last records, "all-train" all of it, "test" the test data.

Shapes, dtypes and sizes are checked from a file's header or metadata before anything is read
(see `h5_check_size` and dualnet.idx): a damaged or hostile file raises DataError naming it.
"""

from __future__ import annotations

import importlib.resources
import math
import operator
import os
import pathlib
from collections.abc import Iterator

import numpy as np

from .errors import DataError
from .idx import MAX_PAYLOAD_BYTES, read_idx, read_idx_header

__all__ = [
    "Dataset", "MissingTestSplit", "SPLITS", "batches", "bundled_mnist_dir", "h5_check_size", "load",
    "load_mnist", "random_shift", "read_idx", "read_idx_header", "shift_images",
]

SPLITS = ("train", "val", "test", "all-train")
MNIST_NUM_CLASSES = 10
# More classes than this is taken for a corrupt label or attribute (a confusion matrix of
# MAX_CLASSES**2 counts must fit in memory).
MAX_CLASSES = 10_000
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HDF5_SUFFIXES = (".h5", ".hdf5", ".he5")
# An HDF5 dataset may declare far more data than its file stores (unwritten chunks read back as
# the fill value), so a few kilobytes could make a reader allocate gigabytes. Real data, even
# deflated zeros (~1032:1 at best), stays within this ratio of its stored bytes.
_MAX_STORED_RATIO = 1100
_SMALL_BYTES = 1 << 20


class MissingTestSplit(DataError):
    """The source holds no test data (a valid state for training; an error for evaluating it)."""


class Dataset:
    """Images and integer class labels held in memory.

    Attributes: ``images`` float32 (N, C, H, W) in [0, 1]; ``labels`` int64 (N,) in
    [0, num_classes); ``name`` str; ``num_classes`` int.

    The constructor accepts images of shape (N, H, W) (one channel is added) or (N, C, H, W),
    uint8 (divided by 255) or float (checked finite and in [0, 1], cast to float32), and integer
    labels. ``num_classes`` defaults to max label + 1. Bad input raises DataError.
    """

    def __init__(self, images, labels, name: str = "dataset", num_classes: int | None = None):
        images, labels, num_classes = _checked(images, labels, num_classes, name, name)
        self._assign(images, labels, name, num_classes)

    @classmethod
    def _from_checked(cls, images, labels, name, num_classes) -> Dataset:
        # Loaders validate with file names in the messages; this skips a second pass.
        self = cls.__new__(cls)
        self._assign(images, labels, name, num_classes)
        return self

    def _assign(self, images, labels, name, num_classes):
        self.images = images
        self.labels = labels
        self.name = name
        self.num_classes = num_classes

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])

    def subset(self, n: int) -> Dataset:
        """The first min(n, len) records (arrays are views of this dataset's)."""
        return self._rows(slice(0, _count(n, "n")))

    def split(self, n_last: int) -> tuple[Dataset, Dataset]:
        """(all but the last n_last records, the last n_last records); views, no copies."""
        n_last = _count(n_last, "n_last")
        if n_last > len(self):
            raise DataError(f"{self.name}: cannot split off {n_last} of {len(self)} records")
        cut = len(self) - n_last
        return self._rows(slice(0, cut)), self._rows(slice(cut, None))

    def _rows(self, rows: slice) -> Dataset:
        return Dataset._from_checked(self.images[rows], self.labels[rows], self.name,
                                     self.num_classes)

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, n={len(self)}, shape={self.shape}, "
                f"num_classes={self.num_classes})")


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
    checkout = pathlib.Path(__file__).resolve().parent.parent / "data" / "mnist"
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


def load_mnist(split: str = "train", validation: int = 10000, limit: int | None = None) -> Dataset:
    """The bundled MNIST split: same as ``load("mnist", split, validation, limit)``."""
    return load("mnist", split, validation=validation, limit=limit)


def load(source: str | os.PathLike = "mnist", split: str = "train", validation: int = 10000,
         limit: int | None = None, num_classes: int | None = None) -> Dataset:
    """Load one split of a dataset as a `Dataset` (images float32 (N, C, H, W) in [0, 1]).

    source: "mnist", a directory of IDX files or an HDF5 file (see the module docstring); the
    string "mnist" always means the bundled copy (write "./mnist" for a folder of that name).
    split: "train", "val", "test" or "all-train". validation: how many trailing training records
    form "val". limit: keep only the first `limit` records of the split. num_classes: defaults to
    10 for MNIST, else the file's ``num_classes`` attribute or max label + 1 over every label set
    in the source, so all splits agree.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    validation = _count(validation, "validation")
    limit = None if limit is None else _count(limit, "limit")
    if num_classes is not None:
        num_classes = _count(num_classes, "num_classes", minimum=1)
    if isinstance(source, str) and source == "mnist":
        return _load_idx(bundled_mnist_dir(), "mnist", split, validation, limit,
                         num_classes or MNIST_NUM_CLASSES)
    path = pathlib.Path(source).expanduser()
    if path.is_dir():
        return _load_idx(path, str(path), split, validation, limit, num_classes)
    if path.is_file():
        if path.suffix.lower() in _HDF5_SUFFIXES or _starts_with(path, _HDF5_SIGNATURE):
            return _load_hdf5(path, split, validation, limit, num_classes)
        raise DataError(f"{path}: not an HDF5 file; give 'mnist', a directory of IDX files or "
                        "an .h5/.hdf5 file")
    raise DataError(f"{path}: no such file or directory; give 'mnist', a directory of IDX files "
                    "or an .h5/.hdf5 file")


def _rows(split: str, n: int, validation: int, limit: int | None, where) -> slice:
    """Which records of a part (training or test data) of n records the split takes."""
    if split == "test" or split == "all-train":
        start, stop = 0, n
    else:
        if validation > n:
            raise DataError(f"{where}: validation={validation} exceeds the {n} training records")
        start, stop = (0, n - validation) if split == "train" else (n - validation, n)
    if limit is not None:
        stop = min(stop, start + limit)
    return slice(start, stop)


def _load_idx(folder: pathlib.Path, label: str, split, validation, limit, num_classes) -> Dataset:
    part = "test" if split == "test" else "train"
    images_path = _find_idx(folder, part, "images")
    labels_path = _find_idx(folder, part, "labels")
    # Headers first: a count or rank mismatch fails before 47 MB are decompressed.
    _, image_dims = read_idx_header(images_path)
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
        if (folder / name).is_file():
            return folder / name
    if not required:
        return None
    raise (MissingTestSplit if part == "test" else DataError)(
        f"{folder}: no {part} {kind} file; looked for {names[0]} and variants ({', '.join(names[1:])})")


def _load_hdf5(path: pathlib.Path, split, validation, limit, num_classes) -> Dataset:
    try:
        import h5py
    except ImportError:
        raise DataError(f"{path}: reading HDF5 needs h5py: pip install h5py") from None
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: cannot open as HDF5: {exc}") from None
    try:
        with f:
            return _read_hdf5(f, path, split, validation, limit, num_classes)
    except DataError:
        raise
    except (OSError, KeyError, RuntimeError, TypeError, ValueError) as exc:  # damaged beyond our checks
        raise DataError(f"{path}: damaged or unreadable HDF5 file ({type(exc).__name__}: {exc})") from None


def _read_hdf5(f, path: pathlib.Path, split, validation, limit, num_classes) -> Dataset:
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
    rows = _rows(split, len(images_ds), validation, limit, images_from)
    h5_check_size(images_ds, images_from, rows=rows.stop - rows.start)
    h5_check_size(labels_ds, labels_from)
    if num_classes is None and "num_classes" in f.attrs:
        num_classes = _count(f.attrs["num_classes"], f"{path}: attribute num_classes", 1)
    if num_classes is None:
        names = [n for n in ("labels", "train/labels", "test/labels") if _is_dataset(f, n)]
        for n in names:
            h5_check_size(f[n], f"{path}:/{n}")
        num_classes = _infer_classes([f[n][()] for n in names])
    images, labels, num_classes = _checked(images_ds[rows], labels_ds[rows], num_classes,
                                           images_from, labels_from)
    return Dataset._from_checked(images, labels, f"{path}:{split}", num_classes)


def _is_dataset(f, name: str) -> bool:
    import h5py

    return isinstance(f.get(name), h5py.Dataset)


def _h5_dataset(f, path, name: str):
    if not _is_dataset(f, name):
        raise DataError(f"{path}: missing dataset '/{name}' (need 'images' and 'labels')")
    return f[name]


def h5_check_size(ds, where, rows: int | None = None) -> None:
    """Raise DataError unless reading `rows` records (default: all) of HDF5 dataset `ds` is safe.

    Checked from the file's metadata alone: the bytes to read must stay within MAX_PAYLOAD_BYTES,
    and the dataset must not declare far more data than the file stores for it.
    """
    per_row = math.prod(ds.shape[1:]) * ds.dtype.itemsize
    wanted = (len(ds) if rows is None else rows) * per_row if ds.ndim else ds.dtype.itemsize
    if wanted > MAX_PAYLOAD_BYTES:
        raise DataError(f"{where}: reading shape {ds.shape} of {ds.dtype} needs {wanted:,} bytes, "
                        f"more than the {MAX_PAYLOAD_BYTES:,} accepted; the file is corrupt or too large")
    declared, stored = ds.size * ds.dtype.itemsize, ds.id.get_storage_size()
    if declared > _SMALL_BYTES and declared > _MAX_STORED_RATIO * stored:
        raise DataError(f"{where}: declares shape {ds.shape} ({declared:,} bytes) but the file stores "
                        f"only {stored:,} bytes for it; the file is damaged or was never fully written")


def _infer_classes(label_sets) -> int | None:
    maxima = [int(a.max()) for a in label_sets if a.dtype.kind in "iu" and a.size]
    return max(maxima) + 1 if maxima else None


def _checked(images, labels, num_classes, images_from, labels_from):
    """Validate and convert to (float32 (N, C, H, W) images, int64 (N,) labels, num_classes)."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or 0 in images.shape[1:]:
        raise DataError(f"{images_from}: images have shape {images.shape}; expected (N, H, W) or "
                        "(N, C, H, W) with non-empty images")
    if labels.ndim != 1:
        raise DataError(f"{labels_from}: labels have shape {labels.shape}; expected (N,)")
    if len(images) != len(labels):
        raise DataError(f"{images_from} holds {len(images)} images but {labels_from} holds "
                        f"{len(labels)} labels")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{labels_from}: labels have dtype {labels.dtype}; expected integers")
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    num_classes = _count(num_classes, "num_classes")
    if num_classes > MAX_CLASSES:
        raise DataError(f"{labels_from}: {num_classes:,} classes (from the labels or the num_classes "
                        f"attribute); at most {MAX_CLASSES:,} are supported")
    # Compared in the source dtype, so uint64 labels past int64's range cannot wrap around.
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise DataError(f"{labels_from}: label {labels[bad[0]]} at record {bad[0]} is outside "
                        f"[0, {num_classes})")
    return _as_unit_float32(images, images_from), labels.astype(np.int64), num_classes


def _as_unit_float32(images: np.ndarray, where) -> np.ndarray:
    if images.dtype == np.uint8:
        out = images.astype(np.float32)
        return np.divide(out, np.float32(255), out=out)
    if images.dtype.kind != "f":
        raise DataError(f"{where}: images have dtype {images.dtype}; expected uint8 (0..255) or "
                        "float in [0, 1]")
    # min/max propagate NaN, so two reductions cover the common all-good case.
    if images.size and not (images.min() >= 0 and images.max() <= 1):
        finite = np.isfinite(images).reshape(len(images), -1).all(axis=1)
        if not finite.all():
            raise DataError(f"{where}: record {np.argmin(finite)} holds NaN or infinite pixels")
        outside = ((images < 0) | (images > 1)).reshape(len(images), -1).any(axis=1)
        raise DataError(f"{where}: float pixels must lie in [0, 1] but record "
                        f"{np.argmax(outside)} does not; store uint8 0..255 or scale to [0, 1]")
    return images.astype(np.float32, copy=False)


def _count(value, what: str, minimum: int = 0) -> int:
    """value as a Python int >= minimum; bools and non-integers raise DataError."""
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise DataError(f"{what} must be an integer, got {value!r}") from None
    if value < minimum:
        raise DataError(f"{what} must be >= {minimum}, got {value}")
    return value


def _starts_with(path: pathlib.Path, signature: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(signature)) == signature
    except OSError:
        return False


def batches(dataset: Dataset, batch_size: int, shuffle: bool = True, seed: int = 0,
            epoch: int = 0, drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Iterate over (images (B, C, H, W), labels (B,)) batches covering the dataset once.

    The order is a permutation from ``np.random.default_rng([seed, epoch])``: every epoch
    differs, and the same (seed, epoch) always gives the same batches. The last batch is
    smaller unless drop_last. Arguments are checked at the call, not at the first batch.
    Unshuffled batches are views of the dataset's arrays.
    """
    batch_size = _count(batch_size, "batch_size", minimum=1)
    seed, epoch = _count(seed, "seed"), _count(epoch, "epoch")
    n = len(dataset.labels)
    order = epoch_order(n, seed, epoch) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    return _batch_iter(dataset.images, dataset.labels, order, batch_size, stop)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of epoch `epoch`: a pure function of (seed, epoch), so a run resumed
    mid-epoch sees the same batches."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def _batch_iter(images, labels, order, batch_size, stop):
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, stop)
        if order is None:
            yield images[start:end], labels[start:end]
        else:
            idx = order[start:end]
            yield images[idx], labels[idx]


def shift_images(images: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Translate each image by its own integer (dy, dx), filling with zeros.

    images: (N, ..., H, W); shifts: integer (N, 2), positive dy moves content down, positive dx
    right. Returns a new array of the same shape and dtype: out[i, ..., y, x] =
    images[i, ..., y - dy_i, x - dx_i], zero where that falls outside the image.
    """
    images = np.asarray(images)
    shifts = np.asarray(shifts)
    if images.ndim < 3 or shifts.shape != (len(images), 2) or shifts.dtype.kind not in "iu":
        raise DataError(f"shift_images needs images (N, ..., H, W) and integer shifts (N, 2); "
                        f"got {images.shape} and {shifts.dtype} {shifts.shape}")
    h, w = images.shape[-2:]
    k = int(np.abs(shifts).max()) if shifts.size else 0
    pad = [(0, 0)] * (images.ndim - 2) + [(k, k), (k, k)]
    padded = np.pad(images, pad)
    # Output pixel y reads padded row y + k - dy; two gathers, one per axis.
    lead = (len(images),) + (1,) * (images.ndim - 3)
    rows = (np.arange(h) + (k - shifts[:, :1])).reshape(lead + (h, 1))
    cols = (np.arange(w) + (k - shifts[:, 1:])).reshape(lead + (1, w))
    return np.take_along_axis(np.take_along_axis(padded, rows, axis=-2), cols, axis=-1)


def random_shift(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Translate each image by an independent random (dy, dx) in [-max_shift, max_shift]^2.

    images: (N, ..., H, W). The shifts are ``rng.integers(-k, k + 1, size=(N, 2))`` (columns dy,
    dx), applied by `shift_images`; zero fill. max_shift=0 returns a copy and draws nothing.
    rng may also be a seed. Returns a new array of the same shape and dtype.
    """
    k = _count(max_shift, "max_shift")
    images = np.asarray(images)
    if k == 0:
        return images.copy()
    rng = np.random.default_rng(rng)
    return shift_images(images, rng.integers(-k, k + 1, size=(len(images), 2)))
