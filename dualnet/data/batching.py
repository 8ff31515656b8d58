"""Feeding training: the per-epoch order, batches, and random-shift augmentation (all NumPy)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import DataError
from .dataset import Dataset, _count


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
