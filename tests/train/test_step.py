"""fit's step: the hand-written training step bit for bit, the strategy's synchronisation and the
batch's weight in it, clipping, and divergence named at the step."""

from __future__ import annotations

import numpy as np
import pytest
from parts import FakeTally, RecordingStrategy, tiny_data, tiny_model

import dualnet as dn
from dualnet.schedules import Schedule
from dualnet.train import TrainingDiverged, TrainState
from dualnet.train.batches import Batch
from dualnet.train.step import Step


def _batch(weight=1.0, n=6, seed=0):
    data = tiny_data(n, seed)
    return Batch(data.images, data.labels.astype(np.int32), n, weight)


def _step(model, strategy=None, clip=None, lr=0.1, momentum=0.9):
    opt = dn.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    return Step(model, opt, strategy or RecordingStrategy(), Schedule.of_run("none", lr, 4, 1), clip, 20), opt


def test_a_step_is_the_hand_written_step_bit_for_bit_and_counts_itself():
    batch = _batch()
    ours, theirs = tiny_model(), tiny_model()
    step, _ = _step(ours)
    opt = dn.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    crit = dn.losses.SoftmaxCrossEntropy()
    state, tally = TrainState(step=1, global_step=5, seen=6), FakeTally()
    for _ in range(2):
        step(batch, state, tally, 0)
        theirs.zero_grad()
        crit(theirs(batch.x), batch.y)
        theirs.backward(crit.backward(), need_input_grad=False)
        opt.step()
    for p, q in zip(ours.parameters(), theirs.parameters()):
        assert np.array_equal(p.data, q.data)
    assert (state.step, state.global_step, state.seen) == (3, 7, 18)
    assert tally.added == [(6, 6), (6, 7)]  # (images, global step) of each


def test_the_strategy_synchronises_each_step_and_the_batch_weight_scales_the_gradient():
    grads = []
    for weight in (1.0, 0.5):
        strategy = RecordingStrategy()
        step, _ = _step(tiny_model(), strategy)
        step(_batch(weight), TrainState(), FakeTally(), 0)
        assert strategy.calls == ["sync_step"]
        grads.append([p.grad.copy() for p in step.model.parameters()])
    for full, half in zip(*grads):
        np.testing.assert_array_equal(half, full * 0.5)


def test_clipping_caps_the_global_gradient_norm():
    model = tiny_model()
    step, _ = _step(model, clip=1e-3, lr=1.0, momentum=0.0)
    step(_batch(), TrainState(), FakeTally(), 0)
    norm = np.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum()) for p in model.parameters()))
    assert norm == pytest.approx(1e-3, rel=1e-5)


def test_a_non_finite_batch_is_named_at_its_step_and_nothing_is_updated():
    model = tiny_model()
    before = [p.data.copy() for p in model.parameters()]
    step, _ = _step(model)
    x = _batch().x.copy()
    x[2, 0, 1, 1] = np.nan
    with pytest.raises(TrainingDiverged, match=r"at epoch 2, step 4 \(global step 10\): the loss is nan; non-finite "
                                               r"values first appear in layer flatten1 \(its output\)"):
        step(Batch(x, _batch().y, 6, 1.0), TrainState(epoch=1, step=3, global_step=9), FakeTally(), 1)
    assert all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters()))
