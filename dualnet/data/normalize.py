"""Per-channel input normalization: computed on a training split, stored with the model, applied to
every batch that reaches it (fit, evaluate, predict, the ONNX export).

    norm = dn.data.channel_stats(train)                  # {"mean": [..C], "std": [..C]}, 0..1 scale
    model.normalization = norm                           # fit and dn.evaluate apply it from now on
    x = dn.data.normalize(images, norm)                  # (x - mean) / std per channel

A checkpoint stores it as the metadata key ``normalization``; `model_normalization` finds it on a
model (its ``normalization`` attribute, else the metadata it was loaded with).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["channel_stats", "normalize", "model_normalization", "check_normalization"]

_ROWS_PER_PASS = 4096  # rows summed at a time: bounded memory for a streamed split too


def channel_stats(dataset: Any) -> dict[str, list[float]]:
    """{"mean": [...], "std": [...]}: one value per channel of `dataset`'s images (N, C, H, W), in
    the 0..1 scale, summed in float64. A channel that never varies gets std 1 (left unscaled)."""
    images = dataset.images if hasattr(dataset, "images") else dataset
    n, c = int(images.shape[0]), int(images.shape[1])
    if n == 0:
        raise DataError(f"{getattr(dataset, 'name', 'the data')}: no images to compute a normalization from")
    total, squares = np.zeros(c), np.zeros(c)
    for start in range(0, n, _ROWS_PER_PASS):
        chunk = np.asarray(images[start:start + _ROWS_PER_PASS], dtype=np.float64)
        total += chunk.sum(axis=(0, 2, 3))
        squares += np.square(chunk).sum(axis=(0, 2, 3))
    count = n * math.prod(images.shape[2:])
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    std[std < 1e-6] = 1.0
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}


def check_normalization(normalization: Any, channels: int, where: str) -> dict[str, list[float]]:
    """`normalization` as {"mean": [...], "std": [...]} of 1 or `channels` finite values (std > 0);
    raises DataError naming `where`, the expected and the actual value."""
    try:
        mean = np.asarray(normalization["mean"], dtype=np.float64).reshape(-1)
        std = np.asarray(normalization["std"], dtype=np.float64).reshape(-1)
    except (KeyError, TypeError, ValueError, IndexError):
        raise DataError(f"{where}: normalization must be {{'mean': [...], 'std': [...]}}, got "
                        f"{normalization!r}") from None
    for what, values in (("mean", mean), ("std", std)):
        if values.size not in (1, channels) or not np.all(np.isfinite(values)):
            raise DataError(f"{where}: normalization {what} must be 1 or {channels} finite numbers (one per "
                            f"channel), got {values.tolist()}")
    if np.any(std <= 0):
        raise DataError(f"{where}: normalization std must be > 0, got {std.tolist()}")
    return {"mean": mean.tolist(), "std": std.tolist()}


def normalize(images: np.ndarray, normalization: dict | None) -> np.ndarray:
    """(images - mean) / std per channel; images: (N, C, H, W) float (float32 stays float32).

    normalization: {"mean": [...], "std": [...]} with 1 or C values each; None returns `images`
    unchanged. Always a new array otherwise."""
    if normalization is None:
        return images
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype.kind != "f":
        raise DataError(f"normalize: images must be float (N, C, H, W), got {images.dtype} {images.shape}")
    norm = check_normalization(normalization, images.shape[1], "normalize")
    mean = np.asarray(norm["mean"], dtype=images.dtype).reshape(1, -1, 1, 1)
    std = np.asarray(norm["std"], dtype=images.dtype).reshape(1, -1, 1, 1)
    return (images - mean) / std


def model_normalization(model: Any) -> dict | None:
    """The normalization `model` takes its inputs with: `model.normalization`, else the
    ``normalization`` metadata of the checkpoint it was loaded from, else None."""
    norm = getattr(model, "normalization", None)
    if norm is None:
        norm = (getattr(model, "metadata", None) or {}).get("normalization")
    return norm
