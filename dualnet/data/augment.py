"""Augmentation for natural images (random crop with zero padding, horizontal flip) and the one
batch transform training applies, each draw a pure function of (seed, epoch, step) so a resumed
run sees the very same batches.

    xb = augment_batch(images, seed, epoch, step, shift=0, crop=4, flip=True)
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .batching import random_shift, shift_images
from .dataset import _count

__all__ = ["random_crop", "random_flip", "augment_batch"]

# the generators' last key word: one independent stream per kind of augmentation
_SHIFT_STREAM, _CROP_STREAM, _FLIP_STREAM = 1, 2, 3


def random_crop(images: np.ndarray, padding: int, rng: np.random.Generator | int) -> np.ndarray:
    """Pad each image by `padding` zeros on every side and crop a random window of the original size:
    the shift augmentation (dn.data.random_shift, the same uniform shift by up to `padding` with
    zero fill) under the name vision recipes use, with its own draws.

    images: (N, ..., H, W). The window's top-left corner in the padded image is drawn as
    ``rng.integers(0, 2 * padding + 1, size=(N, 2))`` (rows, columns): a crop at (oy, ox) is the
    image shifted by (padding - oy, padding - ox) (`shift_images`). padding 0 returns a copy and
    draws nothing. Returns a new array of the same shape and dtype."""
    p = _count(padding, "padding")
    images = np.asarray(images)
    if p == 0:
        return images.copy()
    corners = np.random.default_rng(rng).integers(0, 2 * p + 1, size=(len(images), 2))
    return shift_images(images, p - corners)


def random_flip(images: np.ndarray, rng: np.random.Generator | int) -> np.ndarray:
    """Mirror each image left-right with probability 1/2: image i flips when ``rng.random(N)[i] < 0.5``.

    images: (N, ..., H, W). Returns a new array of the same shape and dtype."""
    images = np.asarray(images)
    if images.ndim < 3:
        raise DataError(f"random_flip needs images (N, ..., H, W), got shape {images.shape}")
    flip = np.random.default_rng(rng).random(len(images)) < 0.5
    out = images.copy()
    out[flip] = images[flip][..., ::-1]
    return out


def augment_batch(images: np.ndarray, seed: int, epoch: int, step: int, shift: int = 0, crop: int = 0,
                  flip: bool = False) -> np.ndarray:
    """The training batch `images` (B, C, H, W) of (seed, epoch, step), augmented: a random shift of up
    to `shift` pixels, then a random crop with `crop` padding, then a horizontal flip, each from its own
    generator ``np.random.default_rng([seed, epoch, step, k])``. Returns `images` itself when every
    augmentation is off, else a new array."""
    out = images
    if shift:
        out = random_shift(out, shift, np.random.default_rng([seed, epoch, step, _SHIFT_STREAM]))
    if crop:
        out = random_crop(out, crop, np.random.default_rng([seed, epoch, step, _CROP_STREAM]))
    if flip:
        out = random_flip(out, np.random.default_rng([seed, epoch, step, _FLIP_STREAM]))
    return out
