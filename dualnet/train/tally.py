"""What the training loop adds up per step: the loss sum, the correct count and, on a GPU, whether
every gradient stayed finite.

`HostTally` (devices "ref" and "cpu", and any optimizer without flat buffers) accumulates into
0-d device arrays, as the loop always did. `DeviceTally` (devices "gpu" and "emu") runs one kernel
per step (`ops.step_stats`) that writes the step's loss sum and correct count into a slot of a
small device array and flags each chunk of the flat gradient that holds a non-finite value with
the first step it did; `flush()`, called where the loop reports progress, copies that array to the
host once. So a GPU step never waits for the host, and a diverged gradient is still named: the
flagged chunk maps to the parameter that holds it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import to_numpy

#: gradient elements each step_stats thread checks
CHUNK = 1024


class HostTally:
    """Loss sum and correct count as 0-d device arrays (read with a host sync each)."""

    deferred = False

    def __init__(self, xp: Any, loss_sum: float, correct: int) -> None:
        self.loss_dev = xp.zeros((), dtype=xp.float64) + loss_sum
        self.correct_dev = xp.zeros((), dtype=xp.int64) + correct

    def add(self, loss: Any, logits: Any, labels: Any, b: int, step: int) -> None:
        self.loss_dev += loss * b
        self.correct_dev += (logits.argmax(axis=1) == labels).sum()

    def totals(self) -> tuple[float, int]:
        return float(self.loss_dev), int(self.correct_dev)

    def divergence(self) -> tuple[int, str] | None:
        return None


class DeviceTally:
    """The step tally of `ops.step_stats` over one flat gradient buffer; see the module docstring.

    cap: steps between flushes at most (the loop's progress interval).
    """

    deferred = True

    def __init__(self, dev: Any, buffer: Any, names: dict[int, str], cap: int, loss_sum: float,
                 correct: int) -> None:
        self.dev, self.buffer, self.cap = dev, buffer, cap
        self.names = names  # id(Parameter) -> its name in the model
        self.nchunks = -(-buffer.total // CHUNK)
        self.tally = dev.xp.zeros(2 * cap + self.nchunks, dtype=buffer.dtype)
        self.slot = 0
        self.loss_sum, self.correct = float(loss_sum), int(correct)
        self.bad: tuple[int, str] | None = None

    def add(self, loss: Any, logits: Any, labels: Any, b: int, step: int) -> None:
        if self.slot == self.cap:
            self.flush()
        self.dev.ops.step_stats(self.tally, loss, logits, labels, self.buffer.grad, CHUNK, self.cap, self.slot,
                                step)
        self.slot += 1

    def flush(self) -> None:
        """One copy to the host: add the pending steps' sums, look at the gradient flags."""
        if not self.slot:  # nothing new since the last flush
            return
        host = to_numpy(self.tally)
        for v in host[:self.slot]:  # in step order, in float64: the sum a 0-d float64 array keeps
            self.loss_sum += float(v)
        self.correct += int(round(float(host[self.cap:self.cap + self.slot].astype(np.float64).sum())))
        self.slot = 0
        flags = host[2 * self.cap:]
        if self.bad is None and flags.any():
            chunks = np.flatnonzero(flags)
            first = int(flags[chunks].min())
            chunk = int(chunks[np.argmin(flags[chunks])])
            self.bad = (first, self._owner(chunk))

    def _owner(self, chunk: int) -> str:
        """The parameter whose gradient holds the first non-finite value of a flagged chunk."""
        lo, hi = chunk * CHUNK, (chunk + 1) * CHUNK
        for p, (o, n) in zip(self.buffer.params, self.buffer.slots):
            if o < hi and lo < o + n and not bool(self.dev.xp.isfinite(p.grad).all()):
                return self.names.get(id(p), p.name)
        return "a gradient (it was finite again when read)"

    def totals(self) -> tuple[float, int]:
        self.flush()
        return self.loss_sum, self.correct

    def divergence(self) -> tuple[int, str] | None:
        """(first global step with a non-finite gradient, the parameter), once a flush saw one."""
        return self.bad

    def parameters_finite(self) -> bool:
        """Whether every parameter is finite: one pass over the flat buffer, one sync."""
        return bool(self.dev.xp.isfinite(self.buffer.data).all())


def make_tally(dev: Any, model: Any, optimizer: Any, cap: int, loss_sum: float, correct: int) -> Any:
    """A DeviceTally when the device runs the GPU code path and the optimizer keeps every model
    parameter in one flat buffer; a HostTally otherwise."""
    if dev.kind in ("gpu", "emu") and hasattr(optimizer, "buffers"):
        buffers = optimizer.buffers()
        named = list(model.named_parameters())
        if len(buffers) == 1 and {id(p) for _, p in named} == {id(p) for p in buffers[0].params} \
                and math.isfinite(loss_sum):
            return DeviceTally(dev, buffers[0], {id(p): name for name, p in named}, cap, loss_sum, correct)
    return HostTally(dev.xp, loss_sum, correct)
