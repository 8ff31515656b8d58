"""Progress points inside an epoch: every `every` steps (and at the epoch's last) the tally is read
(the loop's one host sync there) and the callbacks' `on_batch(state, info)` called."""

from __future__ import annotations

import time
from typing import Any

from .checks import check_tally
from .state import TrainState


class Progress:
    """The epoch's clock and progress points for `callbacks`, in a run of `epochs` epochs of
    `steps` steps. The clock goes on from `state.seconds`, so a resumed epoch's time adds up."""

    def __init__(self, callbacks: list, epochs: int, steps: int, every: int) -> None:
        self.callbacks = [cb for cb in callbacks if hasattr(cb, "on_batch")]
        self.epochs, self.steps, self.every = epochs, steps, every
        self.t0 = time.perf_counter()
        self.last = (self.t0, 0)

    def start_epoch(self, state: TrainState) -> None:
        self.t0 = time.perf_counter() - state.seconds
        self.last = (time.perf_counter(), state.seen)

    def seconds(self) -> float:
        """The epoch's training time so far."""
        return time.perf_counter() - self.t0

    def after_step(self, tally: Any, state: TrainState, epoch: int, lr: float) -> None:
        """At a progress point (`state.step` is the step just done): read the tally and report."""
        if state.step % self.every and state.step != self.steps:
            return
        now = time.perf_counter()
        rate = (state.seen - self.last[1]) / max(now - self.last[0], 1e-9)
        self.last = (now, state.seen)
        if not (tally.deferred or self.callbacks):
            return
        loss_sum, correct = tally.totals()
        check_tally(tally, state, epoch)
        info = dict(epoch=epoch + 1, epochs=self.epochs, step=state.step, steps=self.steps, loss=loss_sum / state.seen,
                    acc=correct / state.seen, images_per_s=rate, lr=lr)
        for cb in self.callbacks:
            cb.on_batch(state, info)
