"""Layer buffers (BatchNorm's running statistics) and nested Dropout RNGs in checkpoints (format 2)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from checkpoint_helpers import assert_identical, assert_same_parameters, no_temp_files
from test_run import InterruptAt, assert_same_run, curves

import dualnet as dn
from dualnet import checkpoint as ck
from dualnet import run
from dualnet.errors import CheckpointError
from dualnet.layers import BatchNorm1d, Dropout, Flatten, Linear, ReLU, Residual, Sequential
from dualnet.run import RunConfig
from dualnet.train import TrainingInterrupted


def trained_bn(steps: int = 3) -> Sequential:
    """lenet5-bn after a few SGD steps: running statistics and counters away from their start."""
    model = dn.models.get("lenet5-bn", seed=1)
    opt = dn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss = dn.losses.SoftmaxCrossEntropy()
    gen = np.random.default_rng(0)
    model.train()
    for _ in range(steps):
        x = gen.random((8, 1, 28, 28)).astype(np.float32)
        model.zero_grad()
        loss(model(x), gen.integers(0, 10, 8))
        model.backward(loss.backward(), need_input_grad=False)
        opt.step()
    return model


def assert_same_buffers(a, b) -> None:
    na, nb = dict(a.named_buffers()), dict(b.named_buffers())
    assert list(na) == list(nb) and na
    for name in na:
        assert_identical(na[name], nb[name])


def test_lenet5_bn_running_statistics_round_trip_bit_for_bit(tmp_path):
    model = trained_bn()
    assert int(model["bn1"].num_batches_tracked) == 3 and float(abs(model["bn1"].running_mean).max()) > 0
    loaded = dn.load(ck.save(model, tmp_path / "bn.h5"))
    assert_same_parameters(model, loaded)
    assert_same_buffers(model, loaded)
    assert loaded["bn1"].num_batches_tracked.shape == () and loaded["bn1"].num_batches_tracked.dtype == np.int64
    x = np.random.default_rng(5).random((4, 1, 28, 28)).astype(np.float32)
    model.eval(), loaded.eval()
    assert_identical(model(x), loaded(x))  # eval mode uses the running statistics


@pytest.mark.parametrize("where", ["emu", pytest.param("gpu", marks=pytest.mark.gpu)])
def test_buffers_load_onto_another_device_and_save_from_it(tmp_path, where):
    model = trained_bn()
    loaded = ck.read(ck.save(model, tmp_path / "bn.h5"), device=where).model
    assert all(dn.backend.array_device(b).startswith(where) for _, b in loaded.named_buffers())
    assert_same_buffers(model, loaded)  # assert_identical copies device arrays to the host explicitly
    again = dn.load(ck.save(loaded, tmp_path / "again.h5"), device="cpu")  # saved from the device
    assert_same_buffers(model, again)


def test_buffers_are_datasets_named_like_named_buffers(tmp_path):
    model = trained_bn(1).astype(np.float64)
    with h5py.File(ck.save(model, tmp_path / "bn.h5"), "r") as f:
        assert f.attrs["format_version"] == 2
        assert sorted(f["model/buffers"]) == sorted(n for n, _ in model.named_buffers())
        assert f["model/buffers/bn2.running_var"].dtype == np.float64
        assert f["model/buffers/bn2.num_batches_tracked"].dtype == np.int64


def test_nested_buffers_and_dropout_states_round_trip(tmp_path):
    inner = Sequential(Linear(6, 6, seed=2), BatchNorm1d(6), Dropout(0.5, seed=9))
    model = Sequential(Flatten(), Linear(4, 6, seed=1), Residual(inner), ReLU(), Linear(6, 3, seed=3),
                       input_shape=(1, 2, 2))
    x = np.random.default_rng(0).random((5, 1, 2, 2)).astype(np.float32)
    for _ in range(3):
        model(x)
    loaded = dn.load(ck.save(model, tmp_path / "nested.h5"))
    assert "res1.body.bn1.running_mean" in dict(loaded.named_buffers())
    assert_same_buffers(model, loaded)
    drop = loaded["res1"].body[2]
    assert drop.rng.bit_generator.state == inner[2].rng.bit_generator.state
    assert_identical(model(x), loaded(x))  # training mode: the same dropout mask, the same statistics


def _edit(path, change) -> None:
    with h5py.File(path, "r+") as f:
        change(f)


def _replace(name, value):
    def change(f):
        del f[name]
        f.create_dataset(name, data=value)
    return change


@pytest.mark.parametrize("change,problem", [
    (_replace("model/buffers/bn1.running_mean", np.zeros(4, np.float32)),
     r"buffer bn1.running_mean \(dataset model/buffers/bn1.running_mean\) has shape \(4,\) in the file but the "
     r"model needs \(6,\)"),
    (_replace("model/buffers/bn1.running_var", np.ones(6, np.float64)),
     r"buffer bn1.running_var \(dataset model/buffers/bn1.running_var\) has dtype float64 in the file but the "
     r"model needs float32"),
    (_replace("model/buffers/bn2.num_batches_tracked", np.zeros(1, np.int64)), r"has shape \(1,\) in the file"),
    (_replace("model/buffers/bn1.running_var", np.full(6, np.nan, np.float32)), r"contains 6 non-finite values"),
    (lambda f: f.__delitem__("model/buffers/bn2.running_mean"), r"missing buffer bn2.running_mean"),
    (lambda f: f.create_dataset("model/buffers/bn9.running_mean", data=np.zeros(2)),
     r"unexpected buffers not in the model architecture: bn9.running_mean"),
    (lambda f: f.__delitem__("model/buffers"), r"missing group 'model/buffers' \(required from format 2\)"),
    (_replace("model/buffers/bn2.running_var", np.array([1, 2, -0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
                                                        np.float32)),
     r"buffer bn2.running_var \(dataset model/buffers/bn2.running_var\) of layer bn2 holds -0.5 at index 2 \(1 "
     r"negative values\); a variance is >= 0"),
    (_replace("model/buffers/bn1.num_batches_tracked", np.array(-3, np.int64)),
     r"bn1.num_batches_tracked .* of layer bn1 holds -3 at index 0 .*a count is >= 0"),
    (_replace("model/buffers/bn1.running_mean", np.array([0, 0, np.inf, 0, 0, 0], np.float32)),
     r"buffer bn1.running_mean .* contains 1 non-finite values"),
])
def test_bad_stored_buffers_are_refused_naming_file_and_dataset(tmp_path, change, problem):
    path = ck.save(trained_bn(1), tmp_path / "bn.h5")
    _edit(path, change)
    with pytest.raises(CheckpointError, match=problem) as info:
        dn.load(path)
    assert str(path) in str(info.value)


def test_a_zero_running_variance_is_valid_and_loads(tmp_path):
    model = trained_bn(1)
    model["bn1"].running_var[:] = 0  # a channel that never varied: eval divides by sqrt(eps)
    loaded = dn.load(ck.save(model, tmp_path / "zero.h5"))
    assert (loaded["bn1"].running_var == 0).all()


def test_format_1_files_load_with_a_fresh_layers_buffers(tmp_path):
    model = trained_bn(2)
    path = ck.save(model, tmp_path / "old.h5")

    def to_format_1(f):
        del f["model/buffers"]
        f.attrs["format_version"] = 1
    _edit(path, to_format_1)
    loaded = dn.load(path)
    assert_same_parameters(model, loaded)
    fresh = dn.models.get("lenet5-bn")
    assert_same_buffers(fresh, loaded)


def test_save_refuses_non_finite_buffers_and_keeps_the_previous_file(tmp_path):
    model = trained_bn(1)
    path = ck.save(model, tmp_path / "bn.h5")
    before = path.read_bytes()
    model["bn2"].running_var[0] = np.inf
    with pytest.raises(CheckpointError, match=r"buffer bn2.running_var contains non-finite values"):
        ck.save(model, path)
    assert path.read_bytes() == before and no_temp_files(tmp_path)


def test_save_verifies_buffers_read_back_exactly(tmp_path, monkeypatch):
    from dualnet.checkpoint import layer_state

    real = layer_state.read_buffers

    def off_by_one(mg, model, version, fail, *rest):  # a reader that damages what it reads
        real(mg, model, version, fail, *rest)
        model["bn1"].num_batches_tracked = model["bn1"].num_batches_tracked + 1

    monkeypatch.setattr("dualnet.checkpoint.reader.read_buffers", off_by_one)
    with pytest.raises(CheckpointError, match=r"buffer bn1.num_batches_tracked reads back different"):
        ck.save(trained_bn(1), tmp_path / "bn.h5")
    assert not (tmp_path / "bn.h5").exists() and no_temp_files(tmp_path)


def test_interrupted_and_resumed_bn_run_equals_the_uninterrupted_run(tmp_path):
    # 40 steps per epoch, reports every 20: the cut lands mid-epoch 2; val_loss and val_acc are
    # computed in eval mode, from the running statistics the resume must restore
    config = RunConfig(model="lenet5-bn", epochs=2, limit=640, batch_size=16, validation=64)
    straight = dn.train_run(config, out=tmp_path / "straight.h5", device="cpu")
    with pytest.raises(TrainingInterrupted):
        dn.train_run(config, out=tmp_path / "cut.h5", device="cpu", callbacks=[InterruptAt(2, 20)],
                     handle_signals=True)
    assert (run.read_run(tmp_path / "cut.h5").state.epoch, run.read_run(tmp_path / "cut.h5").state.step) == (1, 20)
    resumed = dn.resume(tmp_path / "cut.h5", device="cpu")
    assert_same_run(straight.model, resumed.model)
    assert_same_buffers(straight.model, resumed.model)
    assert curves(straight.history) == curves(resumed.history)
    assert straight.test_accuracy == resumed.test_accuracy
