"""An epoch's end: the record, the checks on the loss and the parameters, validation, the callbacks,
and the decisions to stop (a callback's request, a signal); and the state an epoch stopped
inside leaves behind."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from .checks import check_epoch, check_tally
from .state import TrainingInterrupted, TrainState


class EpochEnd:
    """The end of each epoch of a run of `epochs` epochs of `steps` steps: validation on `val`
    (None: none) through `strategy` with `evaluate`, then `callbacks`' on_epoch in order."""

    def __init__(self, model: Any, optimizer: Any, val: Any, strategy: Any, callbacks: list,
                 evaluate: Callable[..., dict], epochs: int, steps: int) -> None:
        self.model, self.optimizer, self.val, self.strategy = model, optimizer, val, strategy
        self.callbacks = [cb for cb in callbacks if hasattr(cb, "on_epoch")]
        self.evaluate, self.epochs, self.steps = evaluate, epochs, steps

    def __call__(self, state: TrainState, tally: Any, seconds: float, guards: Any) -> dict:
        """Close the epoch `state.epoch` whose steps are done; returns its record. Raises
        TrainingDiverged before anything is saved if it diverged, and TrainingInterrupted (after the
        callbacks, so a checkpoint is saved) when a signal reached `guards` (RunGuards) and epochs
        remain."""
        epoch = state.epoch
        loss_sum, correct = tally.totals()
        check_tally(tally, state, epoch)
        record = dict(epoch=epoch + 1, train_loss=loss_sum / state.seen, train_acc=correct / state.seen,
                      lr=self.optimizer.lr, seconds=seconds, images_per_s=state.seen / max(seconds, 1e-9))
        check_epoch(self.model, tally, record, state, self.steps)
        if self.val is not None and len(self.val):
            ev = self.strategy.evaluate(self.evaluate, self.model, self.val)
            record.update(val_loss=ev["loss"], val_acc=ev["accuracy"])
        state.history.append(record)
        state.epoch, state.step, state.loss_sum, state.correct, state.seen, state.seconds = \
            epoch + 1, 0, 0.0, 0, 0, 0.0
        for cb in self.callbacks:
            cb.on_epoch(state, record, self.model, self.optimizer)
        state.stop_reason = self.strategy.agree_reason(state.stop_reason)
        signum = self.strategy.decide_stop(guards.raised)
        if signum is not None and state.epoch < self.epochs:
            raise TrainingInterrupted(f"{signal.Signals(signum).name} received at the end of epoch {epoch + 1}",
                                      state, signum)
        return record


def stop_inside_epoch(state: TrainState, tally: Any, seconds: float, signum: int) -> TrainingInterrupted:
    """The interruption of an epoch after step `state.step`: the state keeps the epoch's sums and
    time so far, so that a resume completes the same epoch record."""
    state.loss_sum, state.correct = tally.totals()
    check_tally(tally, state, state.epoch)
    state.seconds = seconds
    return TrainingInterrupted(f"{signal.Signals(signum).name} received at epoch {state.epoch + 1}, step "
                               f"{state.step}", state, signum)
