"""The step tally of a distributed fit: each rank tallies its share, and every read is collective.

Wraps fit's own tally (dualnet/train/tally.py) built from zero; `totals()` sums the ranks' tallies (plus
the resumed state's sums, counted once) and `divergence()` reports the first non-finite step seen
by any rank, so every rank reads the same numbers and reaches the same decision at the same step.
It is always `deferred`: fit then reads it at its progress points, which are the same steps on
every rank, instead of each rank deciding alone after every step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class DistributedTally:
    deferred = True

    def __init__(self, comm: Any, inner: Any, model: Any, optimizer: Any, loss_sum: float, correct: int) -> None:
        self.comm, self.inner, self.model, self.optimizer = comm, inner, model, optimizer
        self.base = (float(loss_sum), int(correct))
        self.bad: tuple[int, str] | None = None

    def add(self, loss: Any, logits: Any, labels: Any, b: int, step: int) -> None:
        self.inner.add(loss, logits, labels, b, step)
        if not self.inner.deferred and self.bad is None:
            # a host tally has the loss on the host already: checking each step costs nothing
            if not math.isfinite(float(loss)):
                self.bad = (step, "the loss")
            else:
                xp = self.model.device.xp
                for name, p in self.model.named_parameters():
                    if not bool(xp.isfinite(p.grad).all()):
                        self.bad = (step, name)
                        break

    def totals(self) -> tuple[float, int]:
        loss, correct = self.inner.totals()
        summed = self.comm.allreduce_host(np.array([loss, float(correct)], dtype=np.float64))
        return self.base[0] + float(summed[0]), self.base[1] + int(round(float(summed[1])))

    def divergence(self) -> tuple[int, str] | None:
        local = self.inner.divergence() or self.bad
        seen = [(tuple(v), r) for r, v in enumerate(self.comm.allgather(local)) if v is not None]
        if not seen:
            return None
        (step, where), rank = min(seen, key=lambda item: (item[0][0], item[1]))
        return int(step), f"{where} (on rank {rank})"

    def parameters_finite(self) -> bool:
        # the parameters are the same on every rank, so this local answer is every rank's
        xp = self.model.device.xp
        return all(bool(xp.isfinite(buf.data).all()) for buf in self.optimizer.buffers())
