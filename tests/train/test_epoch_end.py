"""An epoch's end: the record from the tally, the next epoch's state, validation through the strategy,
the callbacks in order, the stop decisions; divergence stops it before any callback saves."""

from __future__ import annotations

import signal
import types

import numpy as np
import pytest
from parts import FakeTally, RecordingStrategy, tiny_data, tiny_model

import dualnet as dn
from dualnet.train import TrainingDiverged, TrainingInterrupted, TrainState
from dualnet.train.epoch_end import EpochEnd, stop_inside_epoch


class Log:
    def __init__(self, name, calls, stop=None):
        self.name, self.calls, self.stop = name, calls, stop

    def on_epoch(self, state, record, model, optimizer):
        self.calls.append((self.name, record["epoch"], state.epoch))
        if self.stop:
            state.request_stop(self.stop)


def _end(val=None, callbacks=(), epochs=3, model=None):
    model = model or tiny_model()
    opt = dn.optim.SGD(model.parameters(), lr=0.25)
    strategy = RecordingStrategy()
    return EpochEnd(model, opt, val, strategy, list(callbacks), dn.evaluate, epochs, 5), strategy


def _no_signal():
    return types.SimpleNamespace(raised=None)


def test_the_record_comes_from_the_tally_and_the_state_moves_to_the_next_epoch():
    calls = []
    end, strategy = _end(tiny_data(9, seed=1), [Log("a", calls), object(), Log("b", calls)])
    state = TrainState(epoch=1, step=5, global_step=10, seen=40, seconds=3.0, loss_sum=1.0, correct=1)
    record = end(state, FakeTally(20.0, 30), 4.0, _no_signal())
    assert {k: record[k] for k in ("epoch", "train_loss", "train_acc", "lr", "seconds", "images_per_s")} == dict(
        epoch=2, train_loss=0.5, train_acc=0.75, lr=0.25, seconds=4.0, images_per_s=10.0)
    ev = dn.evaluate(end.model, tiny_data(9, seed=1))
    assert (record["val_loss"], record["val_acc"]) == (ev["loss"], ev["accuracy"])
    assert state.history == [record]
    assert (state.epoch, state.step, state.loss_sum, state.correct, state.seen, state.seconds) == (2, 0, 0.0, 0, 0, 0.0)
    assert calls == [("a", 2, 2), ("b", 2, 2)]  # in order, seeing the next epoch's state
    assert strategy.calls == ["evaluate", "agree_reason None"] and strategy.raised_seen == [None]


def test_a_stop_request_is_agreed_after_every_callback_ran():
    calls = []
    end, strategy = _end(None, [Log("a", calls, stop="enough"), Log("b", calls)])
    state = TrainState(step=5, seen=8)
    end(state, FakeTally(), 1.0, _no_signal())
    assert calls == [("a", 1, 1), ("b", 1, 1)] and state.stop_reason == "enough"
    assert strategy.calls == ["agree_reason enough"]


def test_a_signal_interrupts_after_the_callbacks_unless_the_run_is_done():
    for epoch, epochs in ((0, 3), (2, 3)):
        calls = []
        end, _ = _end(None, [Log("save", calls)], epochs=epochs)
        state = TrainState(epoch=epoch, step=5, seen=8)
        guards = types.SimpleNamespace(raised=signal.SIGTERM)
        if epoch + 1 < epochs:
            with pytest.raises(TrainingInterrupted, match=f"SIGTERM received at the end of epoch {epoch + 1}") as info:
                end(state, FakeTally(), 1.0, guards)
            assert info.value.state is state and info.value.signum == signal.SIGTERM
        else:
            end(state, FakeTally(), 1.0, guards)
        assert calls == [("save", epoch + 1, epoch + 1)]


@pytest.mark.parametrize("tally, breaks, pattern", [
    (FakeTally(float("nan"), 0), False, r"diverged in epoch 1: the mean loss is nan"),
    (FakeTally(divergence=(7, "linear1.bias")), False, r"in the gradient of linear1.bias at global step 7"),
    (FakeTally(), True, r"diverged by the end of epoch 1 \(step 5, global step 0\): parameter fc1.weight"),
])
def test_divergence_stops_the_epoch_before_any_callback_or_record(tally, breaks, pattern):
    calls = []
    model = tiny_model()
    if breaks:
        model.layers[1].weight.data[0, 0] = np.inf
    end, _ = _end(None, [Log("save", calls)], model=model)
    state = TrainState(step=5, seen=8)
    with pytest.raises(TrainingDiverged, match=pattern):
        end(state, tally, 1.0, _no_signal())
    assert calls == [] and state.history == [] and state.epoch == 0


def test_stopping_inside_an_epoch_keeps_its_sums_and_time_for_the_resume():
    state = TrainState(epoch=1, step=3, seen=12)
    exc = stop_inside_epoch(state, FakeTally(4.5, 6), 2.5, signal.SIGINT)
    assert isinstance(exc, TrainingInterrupted) and exc.state is state and exc.signum == signal.SIGINT
    assert str(exc) == "SIGINT received at epoch 2, step 3"
    assert (state.loss_sum, state.correct, state.seconds) == (4.5, 6, 2.5)
