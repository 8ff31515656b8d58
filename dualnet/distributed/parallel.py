"""Data parallelism inside `dn.fit(..., comm=...)`: what fit asks of the job at each point of a step.

At the start rank 0's parameters, layer buffers (batch-norm running statistics), optimizer state
and run state are broadcast, so a fresh run and a resumed one start identical everywhere. Each
global batch of the seeded order is shared out as `batch[rank::size]`; since the batch size is a
multiple of the world size, rank r's share of every batch is one contiguous run of `order[r::size]`.
The loss gradient of a share is weighted by its share of the batch (`Batch.weight`), so one in-place sum
of the flat gradient buffer gives every rank the gradient of the global batch's mean loss.
Batch-norm layers normalise with their share's statistics; their running statistics are averaged
over ranks after every step (`sync_step`), so they follow the mean of the shares' statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .job import DistributedError
from .tally import DistributedTally


class DataParallel:
    """fit's side of a communicator `comm` for one call of fit (see the module docstring).

    Raises DistributedError (the same on every rank) when the ranks disagree on the data or the
    batch, or when the batch size is not a multiple of the world size.
    """

    def __init__(self, comm: Any, model: Any, optimizer: Any, state: Any, batch_size: int, n: int) -> None:
        self.comm, self.rank, self.size = comm, comm.rank, comm.size
        self.batch_size, self.n = batch_size, n
        self.model, self.optimizer = model, optimizer
        seen = comm.allgather((n, batch_size))
        if len(set(seen)) != 1:
            raise DistributedError("fit: the ranks disagree on (training images, batch size): "
                                   f"{', '.join(f'rank {r}: {v}' for r, v in enumerate(seen))}; every rank must "
                                   "load the same data with the same options")
        if batch_size % self.size:
            raise DistributedError(f"fit: batch_size {batch_size} is not divisible by the world size {self.size}: "
                                   f"the batch size is the global batch, shared out evenly; pass a multiple of "
                                   f"{self.size}, e.g. {max(self.size, batch_size // self.size * self.size)}")
        if 0 < n % batch_size < self.size:
            raise DistributedError(f"fit: the last batch of each epoch has {n % batch_size} image(s), fewer than the "
                                   f"{self.size} ranks, so a rank would get none; change the number of training "
                                   "images (--limit, --validation) or the batch size by a few")
        if not hasattr(optimizer, "buffers"):
            raise DistributedError(f"fit: distributed training needs an optimizer with flat buffers (dualnet.optim); "
                                   f"got {type(optimizer).__name__}")
        self.state = self._broadcast_start(state)

    def _broadcast_start(self, state: Any) -> Any:
        """Rank 0's parameters, buffers, optimizer state and run state on every rank; returns the state."""
        comm = self.comm
        covered: set[int] = set()
        for buf in self.optimizer.buffers():
            comm.broadcast(buf.data)
            covered.update(id(p) for p in buf.params)
            names = sorted({name for p in buf.params for name in p.state})
            for name in comm.bcast_object(names):
                comm.broadcast(buf.state(name))
        for p in self.model.parameters():
            if id(p) not in covered:
                comm.broadcast(p.data)
        for _, b in self.model.named_buffers():
            comm.broadcast(b)
        steps, state_dict = comm.bcast_object((self.optimizer.steps, state.to_dict()))
        self.optimizer.steps = steps
        return type(state).from_dict(state_dict)

    # --- fit's strategy (dualnet.train.strategy) ------------------------------------------

    def order_share(self, order: np.ndarray) -> np.ndarray:
        """This rank's rows `order[rank::size]` of the epoch's order: since the batch size is a multiple of the
        world size, its share of every global batch is one contiguous run of them."""
        return order[self.rank::self.size]

    def rows(self, start: int, stop: int) -> tuple[int, int]:
        """This rank's rows [lo, hi) of its order share for the global batch order[start:stop]."""
        return start // self.size, (stop - self.rank + self.size - 1) // self.size

    def host_share(self, batch: np.ndarray) -> np.ndarray:
        """This rank's images of a global batch fit prepared on the host (augmented, normalized: its draws
        belong to the global batch, so every world size sees the same images)."""
        return np.ascontiguousarray(batch[self.rank::self.size])

    def sync_step(self) -> None:
        """After a step's backward pass: the flat gradient buffer summed over ranks in place (one
        collective per buffer, one for a model), and the floating-point layer buffers (batch-norm
        running statistics, which each rank updated from its own share) replaced by their mean over
        ranks, so every rank holds the same buffers at every step."""
        for buf in self.optimizer.buffers():
            self.comm.allreduce_sum(buf.grad)
        for _, b in self.model.named_buffers():
            if b.dtype.kind == "f":
                self.comm.allreduce_sum(b)
                b *= 1.0 / self.size

    def decide_stop(self, raised: int | None) -> int | None:
        """The signal any rank has received (the largest number), or None: the same answer on every rank."""
        top = int(self.comm.allreduce_host(np.array([raised or 0], dtype=np.int64), "max")[0])
        return top or None

    def agree_reason(self, reason: str | None) -> str | None:
        """A callback's stop request on any rank (the lowest rank's reason) stops every rank."""
        return next((r for r in self.comm.allgather(reason) if r), None)

    def tally(self, make: Callable[[float, int], Any], state: Any) -> DistributedTally:
        """The ranks' collective tally over this rank's own, built from zero (`make(loss_sum, correct)`)."""
        return DistributedTally(self.comm, make(0.0, 0), self.model, self.optimizer, state.loss_sum, state.correct)

    def evaluate(self, evaluate: Callable[..., dict], model: Any, dataset: Any, batch_size: int = 256) -> dict:
        """`evaluate` over the ranks' shares `dataset[rank::size]`, the counts summed: {"accuracy", "loss",
        "n", "per_class", "confusion"} of the whole dataset on every rank."""
        share = _Share(dataset, self.rank, self.size)
        k = int(getattr(dataset, "num_classes", 0) or int(dataset.labels.max()) + 1)
        loss_sum, confusion = 0.0, np.zeros((k, k), np.int64)
        if len(share):
            ev = evaluate(model, share, batch_size)
            loss_sum = ev["loss"] * ev["n"]
            confusion = ev["confusion"]
        kk = int(self.comm.allreduce_host(np.array([confusion.shape[0]], np.int64), "max")[0])
        padded = np.zeros((kk, kk), np.int64)
        padded[:confusion.shape[0], :confusion.shape[1]] = confusion
        total = self.comm.allreduce_host(padded.ravel()).reshape(kk, kk)
        loss = float(self.comm.allreduce_host(np.array([loss_sum], np.float64))[0])
        n = int(total.sum())
        return dict(accuracy=float(np.trace(total) / n) if n else math.nan, loss=loss / max(n, 1), n=n,
                    per_class=np.diag(total) / np.maximum(total.sum(axis=1), 1), confusion=total)


class _Share:
    """Rows rank::size of a dataset, with the attributes evaluate reads."""

    def __init__(self, dataset: Any, rank: int, size: int) -> None:
        self.images = dataset.images[rank::size]
        self.labels = dataset.labels[rank::size]
        self.name = getattr(dataset, "name", "the data")
        self.num_classes = getattr(dataset, "num_classes", None)

    def __len__(self) -> int:
        return len(self.labels)
