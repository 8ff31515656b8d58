"""Where a training step's batch comes from: fit's batch sources.

Every source follows the epoch's seeded order (dn.data.epoch_order: a pure function of (seed,
epoch)) and hands a step this process's rows of the global batch, which the strategy chooses.

- `DeviceBatches`: the dataset moved to the model's device once per fit; a batch is a gather
  there (one kernel on a GPU), so a step does not wait for the host.
- `HostBatches`: each batch prepared on the host, then moved: augmented (dn.data.augment_batch, a
  pure function of (seed, epoch, step)) and normalized with the model's input normalization, from
  the images in memory or read from a streamed file a step or two ahead (dn.data.prefetched).
  The global batch is prepared whole, so every world size sees the same images.

Labels always live on the device, moved once per fit; the order (or this process's share of it)
once per epoch.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import data as _data
from ..backend import to_device


class Batch(NamedTuple):
    """One step's batch as this process trains on it.

    x: (b, C, H, W) on the device; y: (b,) int32 on the device; size: the global batch's image
    count B (what the run counts as seen); weight: b / B, this process's share of the mean loss."""

    x: Any
    y: Any
    size: int
    weight: float


class _Source:
    """What the sources share: the epoch's order and this process's rows of it on the device."""

    def __init__(self, train: Any, dev: Any, strategy: Any, batch_size: int, seed: int) -> None:
        self.train, self.dev, self.strategy = train, dev, strategy
        self.batch_size, self.n, self.seed = batch_size, len(train), seed
        self.labels = to_device(train.labels.astype(np.int32), dev)
        self.epoch = -1
        self.order: np.ndarray = np.zeros(0, np.int64)
        self.order_dev: Any = None

    def start_epoch(self, epoch: int, first_step: int) -> None:
        """Set up epoch `epoch`'s order, from step `first_step` (a resumed epoch starts inside)."""
        self.epoch = epoch
        self.order = _data.epoch_order(self.n, self.seed, epoch)
        share = np.ascontiguousarray(self.strategy.order_share(self.order))
        self.order_dev = to_device(share.astype(np.int32), self.dev)  # one upload per epoch

    def _span(self, step: int) -> tuple[int, int, int, int]:
        """Global batch `step`'s rows [start, stop) of the order and this process's [lo, hi) of its share."""
        start, stop = step * self.batch_size, min((step + 1) * self.batch_size, self.n)
        lo, hi = self.strategy.rows(start, stop)
        return start, stop, lo, hi

    def close(self) -> None:
        return None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DeviceBatches(_Source):
    """Batches gathered from the images on the device (see the module docstring).

    images: the training images (N, C, H, W), already normalized and of the model's dtype."""

    def __init__(self, train: Any, images: np.ndarray, dev: Any, strategy: Any, batch_size: int, seed: int) -> None:
        self.images = to_device(images, dev)  # one transfer per fit
        super().__init__(train, dev, strategy, batch_size, seed)

    def batch(self, step: int) -> Batch:
        start, stop, lo, hi = self._span(step)
        x, y = self.dev.ops.gather_batch(self.images, self.labels, self.order_dev, lo, hi)
        return Batch(x, y, stop - start, (hi - lo) / (stop - start))


class HostBatches(_Source):
    """Batches prepared on the host, augmented and normalized (see the module docstring).

    augment: (shift, crop, flip) as dn.data.augment_batch takes them; normalization: the model's
    (dn.data.model_normalization) or None; dtype: the model's parameter dtype."""

    def __init__(self, train: Any, dev: Any, strategy: Any, batch_size: int, seed: int,
                 augment: tuple[int, int, bool], normalization: dict | None, dtype: np.dtype) -> None:
        super().__init__(train, dev, strategy, batch_size, seed)
        self.augment, self.normalization, self.dtype = augment, normalization, dtype
        self.streamed = not isinstance(train.images, np.ndarray)  # a StreamDataset: read from its file
        self.reader: Any = None

    def start_epoch(self, epoch: int, first_step: int) -> None:
        super().start_epoch(epoch, first_step)
        if self.streamed:  # the epoch's batches in its order, read a step or two ahead
            self.close()
            order, size, steps = self.order, self.batch_size, -(-self.n // self.batch_size)
            self.reader = _data.prefetched(lambda s: self.train.images[order[s * size:(s + 1) * size]],
                                           range(first_step, steps))

    def batch(self, step: int) -> Batch:
        start, stop, lo, hi = self._span(step)
        raw = next(self.reader) if self.reader is not None else self.train.images[self.order[start:stop]]
        x = _data.augment_batch(raw, self.seed, self.epoch, step, *self.augment)
        x = _data.normalize(x, self.normalization).astype(self.dtype, copy=False)
        return Batch(to_device(self.strategy.host_share(x), self.dev), self.labels[self.order_dev[lo:hi]],
                     stop - start, (hi - lo) / (stop - start))

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()  # stops the prefetch thread of an epoch left early
            self.reader = None


def batch_source(train: Any, model: Any, strategy: Any, batch_size: int, seed: int,
                 augment: tuple[int, int, bool]) -> DeviceBatches | HostBatches:
    """The source for `train` and `model`: host-prepared batches when augmenting or streaming,
    else the images moved to the model's device once. The data follows the model's parameter
    dtype (a float64 or float16 checkpoint) and its input normalization (applied after any
    augmentation)."""
    from .checks import parameter_dtype

    dev, dtype = model.device, parameter_dtype(model)
    norm = _data.model_normalization(model)
    if any(augment) or not isinstance(train.images, np.ndarray):
        return HostBatches(train, dev, strategy, batch_size, seed, augment, norm, dtype)
    return DeviceBatches(train, _data.normalize(train.images, norm).astype(dtype, copy=False), dev, strategy,
                         batch_size, seed)
