"""The in-memory Dataset, and the checks and split arithmetic every dataset reader shares.

Every reader (idx_source, hdf5) validates through `_checked`, with the file names in its
messages, and builds the result with `Dataset._from_checked`, so records are checked once.
"""

from __future__ import annotations

import operator

import numpy as np

from ..errors import DataError

# More classes than this is taken for a corrupt label or attribute (a confusion matrix of
# MAX_CLASSES**2 counts must fit in memory).
MAX_CLASSES = 10_000


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


def default_validation(n_train: int) -> int:
    """How many trailing training records form "val" when no count is given: a sixth of them, at
    most 10,000 (MNIST's 10,000 of 60,000)."""
    return min(10000, n_train // 6)


def _rows(split: str, n: int, validation: int | None, limit: int | None, where) -> slice:
    """Which records of a part (training or test data) of n records the split takes; validation None
    is `default_validation` of the part."""
    if validation is None:
        validation = default_validation(n)
    if split == "test" or split == "all-train":
        start, stop = 0, n
    else:
        if validation > n:
            raise DataError(f"{where}: validation={validation} exceeds the {n} training records")
        start, stop = (0, n - validation) if split == "train" else (n - validation, n)
    if limit is not None:
        stop = min(stop, start + limit)
    return slice(start, stop)


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
    labels, num_classes = _checked_labels(labels, num_classes, len(images), images_from, labels_from)
    return _as_unit_float32(images, images_from), labels, num_classes


def _checked_labels(labels, num_classes, n_images: int, images_from, labels_from) -> tuple[np.ndarray, int]:
    """Validate labels for `n_images` images: (int64 (N,) labels, num_classes)."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataError(f"{labels_from}: labels have shape {labels.shape}; expected (N,)")
    if n_images != len(labels):
        raise DataError(f"{images_from} holds {n_images} images but {labels_from} holds "
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
    return labels.astype(np.int64), num_classes


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
