"""fit and evaluate: learning, determinism, exact resume, schedules, guards."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dualnet as dn
from dualnet import checkpoint
from dualnet.schedules import learning_rate
from dualnet.train import TrainingDiverged, TrainState


@pytest.fixture(scope="module")
def small():
    return dn.data.load("mnist", "train", limit=2000), dn.data.load("mnist", "val", limit=500)


def sgd(model, lr=0.02):
    return dn.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)


def test_lenet5_one_epoch_on_2000_images_lowers_loss_and_beats_chance(small):
    train, val = small
    model = dn.models.lenet5(seed=0)
    crit = dn.losses.SoftmaxCrossEntropy()
    before = crit(model(val.images), val.labels)
    history = dn.fit(model, train, val, epochs=1, optimizer=sgd(model), schedule="cosine")
    after = crit(model(val.images), val.labels)
    assert after < 0.5 * before
    assert history[0]["val_acc"] > 0.6  # chance is 0.1
    assert set(history[0]) >= {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
                                "images_per_s"}


def test_same_seed_gives_bitwise_identical_training_on_cpu(small):
    train, _ = small
    runs = []
    for _ in range(2):
        model = dn.models.lenet5(seed=3)
        dn.fit(model, train.subset(640), None, epochs=1, optimizer=sgd(model), seed=7, augment_shift=2)
        runs.append([p.data.copy() for p in model.parameters()])
    assert all(np.array_equal(a, b) for a, b in zip(*runs))


class StopAt(Exception):
    pass


class Stopper:
    def __init__(self, epoch=None, step=None):
        self.epoch, self.step = epoch, step

    def on_batch(self, state, info):
        if self.step is not None and state.epoch == 0 and state.step == self.step:
            raise StopAt()

    def on_epoch(self, state, record, model, optimizer):
        if self.epoch is not None and state.epoch == self.epoch:
            raise StopAt()


@pytest.mark.parametrize("stop", [dict(epoch=1), dict(step=4)], ids=["after-epoch-1", "mid-epoch-step-4"])
def test_resume_from_checkpoint_is_exact(small, tmp_path, stop):
    train, val = small
    data = train.subset(512)
    kwargs = dict(epochs=2, batch_size=64, schedule="cosine", seed=1, augment_shift=1, progress_every=1)
    straight = dn.models.lenet5(seed=0)
    dn.fit(straight, data, None, optimizer=sgd(straight), **kwargs)

    model = dn.models.lenet5(seed=0)
    opt = sgd(model)
    state = TrainState(seed=1)
    with pytest.raises(StopAt):
        dn.fit(model, data, None, optimizer=opt, state=state, callbacks=[Stopper(**stop)], **kwargs)
    path = tmp_path / "mid.h5"
    checkpoint.save(model, path, optimizer=opt, history=state.history, rng_state={"train_state": state.to_dict()})
    ckpt = checkpoint.read(path)
    resumed = ckpt.model
    dn.fit(resumed, data, None, optimizer=ckpt.make_optimizer(),
           state=TrainState.from_dict(ckpt.rng_state["train_state"]), **kwargs)
    for (name, a), b in zip(straight.named_parameters(), resumed.parameters()):
        assert np.array_equal(a.data, b.data), name


def test_evaluate_reports_accuracy_per_class_and_confusion(small):
    _, val = small
    model = dn.models.lenet5(seed=0)
    result = dn.evaluate(model, val, batch_size=128)
    c = result["confusion"]
    assert c.shape == (10, 10) and c.sum() == len(val)
    assert result["accuracy"] == pytest.approx(np.trace(c) / len(val))
    np.testing.assert_allclose(result["per_class"], np.diag(c) / np.maximum(c.sum(axis=1), 1))
    assert model.training  # evaluate restores the mode


def test_evaluate_gives_the_same_result_at_its_default_batch_as_at_a_small_one(small):
    """The default batch (chunked on "cpu") changes speed, not a prediction or the loss."""
    from dualnet.train import EVAL_BATCH_SIZE

    train, _ = small
    model = dn.models.lenet5(seed=1)
    assert len(train) > EVAL_BATCH_SIZE  # more than one default batch, each run in chunks
    whole, small_batches = dn.evaluate(model, train), dn.evaluate(model, train, batch_size=37)
    np.testing.assert_array_equal(whole["predictions"], small_batches["predictions"])
    np.testing.assert_array_equal(whole["confusion"], small_batches["confusion"])
    assert whole["loss"] == pytest.approx(small_batches["loss"], rel=1e-6)
    np.testing.assert_allclose(whole["probabilities"], small_batches["probabilities"], rtol=1e-5, atol=1e-7)


def test_non_finite_loss_names_the_step_and_the_layer(small):
    train, _ = small
    model = dn.models.lenet5(seed=0)
    model["fc2"].weight.data[0, 0] = np.nan
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 1 .*parameter fc2.weight"):
        dn.fit(model, train.subset(128), None, epochs=1, optimizer=sgd(model))


def test_exploding_learning_rate_is_stopped_with_a_message(small):
    train, _ = small
    model = dn.models.lenet5(seed=0)
    with pytest.raises(TrainingDiverged, match=r"step \d+ .*non-finite values first appear in"):
        dn.fit(model, train.subset(640), None, epochs=1, optimizer=dn.optim.SGD(model.parameters(), lr=1e6))


def test_gradient_clipping_bounds_the_global_norm(small):
    train, _ = small
    model = dn.models.lenet5(seed=0)
    seen = []

    class Spy(dn.optim.SGD):
        def step(self):
            seen.append(math.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum()) for p in self.params)))
            super().step()

    dn.fit(model, train.subset(256), None, epochs=1, optimizer=Spy(model.parameters(), lr=0.01), clip_grad_norm=0.5)
    assert max(seen) <= 0.5 + 1e-6


@pytest.mark.parametrize("kwargs,match", [
    (dict(epochs=0), "epochs"), (dict(batch_size=0), "batch_size"), (dict(schedule="linear"), "schedule"),
    (dict(augment_shift=-1), "augment_shift"),
])
def test_fit_rejects_bad_arguments(small, kwargs, match):
    model = dn.models.lenet5()
    with pytest.raises(ValueError, match=match):
        dn.fit(model, small[0], None, **kwargs)


def test_schedules():
    assert learning_rate("none", 0.1, 500, 1000, 100, 10) == 0.1
    assert learning_rate("step", 0.1, 0, 1000, 100, 9) == pytest.approx(0.1)
    assert learning_rate("step", 0.1, 300, 900, 100, 9) == pytest.approx(0.01)
    assert learning_rate("step", 0.1, 600, 900, 100, 9) == pytest.approx(0.001)
    assert learning_rate("cosine", 0.1, 0, 1000, 100, 10) == pytest.approx(0.1)
    assert learning_rate("cosine", 0.1, 500, 1000, 100, 10) == pytest.approx(0.05)
    assert learning_rate("cosine", 0.1, 1000, 1000, 100, 10) == pytest.approx(0.0, abs=1e-12)


def test_every_entry_point_refuses_images_of_another_size_than_the_model_was_built_for():
    """Global pooling takes any image size; a model is still only valid at the size it was built for."""
    from dualnet.layers import Conv2d, GlobalAvgPool2d, Linear, ReLU

    model = dn.Sequential(Conv2d(1, 2, 3, seed=0), ReLU(), GlobalAvgPool2d(), Linear(2, 3, seed=0),
                          input_shape=(1, 8, 8))
    rng = np.random.default_rng(0)
    right = dn.data.Dataset(rng.random((6, 1, 8, 8), dtype=np.float32), np.arange(6) % 3, name="right")
    wrong = dn.data.Dataset(rng.random((6, 1, 10, 10), dtype=np.float32), np.arange(6) % 3, name="wrong")
    assert model.output_shape((1, 10, 10)) == (3,)  # the layers alone would take it
    before = [p.data.copy() for p in model.parameters()]
    match = r"^wrong: images of shape \(1, 10, 10\) differ from the \(1, 8, 8\) the model was built for"
    for call in (lambda: dn.evaluate(model, wrong), lambda: dn.fit(model, wrong, epochs=1),
                 lambda: dn.fit(model, right, wrong, epochs=1)):
        with pytest.raises(dn.DataError, match=match):
            call()
    assert all((p.data == b).all() for p, b in zip(model.parameters(), before))  # refused before any step
    assert dn.evaluate(model, right)["n"] == 6
