"""Per-channel input normalization: computed on a training split, stored with the model, applied to
every batch that reaches it (fit, evaluate, predict, the ONNX export).

    norm = dn.data.channel_stats(train)                  # {"mean": [..C], "std": [..C]}, 0..1 scale
    model.normalization = norm                           # fit and dn.evaluate apply it from now on
    x = dn.data.normalize(images, norm)                  # (x - mean) / std per channel

A checkpoint stores it as the metadata key ``normalization``; `model_normalization` finds it on a
model (its ``normalization`` attribute, else the metadata it was loaded with).

A normalization is accepted (`check_normalization`) when it holds 1 value (for every channel) or
one value per input channel for each of mean and std, every value finite once cast to float32
(the dtype inputs are normalized in), each std at least `STD_FLOOR` and each mean within
`MEAN_RANGE`: inputs lie in [0, 1], so a channel's mean does too, and dividing by a std below
the floor (`channel_stats` gives 1 to such a channel) would blow inputs up by more than 10**6.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["channel_stats", "normalize", "model_normalization", "check_normalization", "stored_normalization",
           "STD_FLOOR", "MEAN_RANGE"]

#: the smallest std accepted; `channel_stats` gives a channel with a smaller one std 1 instead
STD_FLOOR = 1e-6
#: the means accepted: inputs lie in [0, 1]; the margin admits a deliberate shift, not a 0..255 scale
MEAN_RANGE = (-1.0, 2.0)

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
    std[std < STD_FLOOR] = 1.0
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}


def check_normalization(normalization: Any, channels: int | None, where: str) -> dict[str, list[float]]:
    """`normalization` as {"mean": [...], "std": [...]} of 1 or `channels` values each (any count
    when `channels` is None), finite in float32, std >= STD_FLOOR, mean within MEAN_RANGE; raises
    DataError naming `where`, the expected and the actual value."""
    try:
        mean = np.asarray(normalization["mean"], dtype=np.float64).reshape(-1)
        std = np.asarray(normalization["std"], dtype=np.float64).reshape(-1)
    except (KeyError, TypeError, ValueError, IndexError, OverflowError):
        raise DataError(f"{where}: normalization must be {{'mean': [...], 'std': [...]}}, got "
                        f"{normalization!r}") from None
    for what, values in (("mean", mean), ("std", std)):
        with np.errstate(over="ignore"):  # an overflow is what the check below reports
            finite = np.isfinite(values.astype(np.float32))
        count_ok = values.size >= 1 if channels is None else values.size in (1, channels)
        if not count_ok or not finite.all():
            count = "1 or more" if channels is None else f"1 or {channels}"
            raise DataError(f"{where}: normalization {what} must be {count} finite numbers (one per "
                            f"channel, finite in float32), got {values.tolist()}")
    if np.any(std <= 0):
        raise DataError(f"{where}: normalization std must be > 0, got {std.tolist()}")
    if np.any(std.astype(np.float32) < STD_FLOOR):
        raise DataError(f"{where}: normalization std must be >= {STD_FLOOR:g} (inputs lie in [0, 1]; a smaller std "
                        f"would scale them by more than {1 / STD_FLOOR:g}), got {std.tolist()}")
    low, high = MEAN_RANGE
    if np.any((mean < low) | (mean > high)):
        raise DataError(f"{where}: normalization mean must lie in [{low:g}, {high:g}] (inputs lie in [0, 1]; give "
                        f"the mean in that scale, not 0..255), got {mean.tolist()}")
    return {"mean": mean.tolist(), "std": std.tolist()}


def stored_normalization(metadata: dict, channels: int | None, where: str) -> dict[str, list[float]] | None:
    """The checked ``normalization`` of a checkpoint's `metadata` (None when its model takes inputs
    as they are). A run stored as normalizing (train_config normalize=true) without one is refused:
    its model would be fed inputs unlike those it was trained on."""
    norm = metadata.get("normalization")
    config = metadata.get("train_config")
    if norm is None:
        if isinstance(config, dict) and config.get("normalize") is True:
            raise DataError(f"{where}: the run normalizes its inputs (train_config normalize=true) but the "
                            "metadata holds no 'normalization'; the model cannot see inputs as it was trained on "
                            "them (restore the normalization or use the run's original checkpoint)")
        return None
    return check_normalization(norm, channels, where)


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
