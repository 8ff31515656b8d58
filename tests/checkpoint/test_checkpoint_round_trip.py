"""Checkpoints: round trips of every model, the documented HDF5 layout, histories, metadata, RNG and optimizer state."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
from checkpoint_helpers import HISTORY, assert_identical, assert_same_parameters, no_temp_files, set_grads, tiny
from hypothesis import given, settings
from hypothesis import strategies as st

import dualnet as dn
from dualnet import checkpoint as ck
from dualnet.errors import CheckpointError
from dualnet.layers import Sequential

# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", dn.models.names())
def test_round_trip_every_model(tmp_path, name, dtype):
    model = dn.models.get(name, seed=3, dtype=dtype)
    set_grads(model, 0)
    for p in model.parameters():  # make biases non-zero too
        p.data += p.grad * 0.01
    path = tmp_path / f"{name}.h5"
    assert ck.save(model, path, history=HISTORY, run="unit", accuracy=0.98, tags=["a", "b"]) == path
    ckpt = ck.read(path)
    assert_same_parameters(model, ckpt.model)
    assert ckpt.model.config() == model.config()
    assert ckpt.model.spec == model.spec == {"name": name, "kwargs": {"seed": 3, "dtype": dtype}}
    assert ckpt.metadata == {"run": "unit", "accuracy": 0.98, "tags": ["a", "b"]}
    assert ckpt.history == HISTORY
    assert [type(v) for v in ckpt.history[0].values()] == [int] + [float] * 6
    assert ckpt.optimizer_state is None and ckpt.rng_state is None and ckpt.make_optimizer() is None
    assert ckpt.attrs["format"] == "dualnet-checkpoint" and ckpt.attrs["dtype"] == dtype
    assert ckpt.path == path
    x = np.random.default_rng(0).random((2, *model.input_shape)).astype(dtype)
    model.eval(), ckpt.model.eval()
    assert_identical(model(x), ckpt.model(x))
    loaded = dn.load(path)
    assert isinstance(loaded, Sequential)
    assert_same_parameters(model, loaded)
    assert loaded.history == HISTORY and loaded.metadata["run"] == "unit" and loaded.rng_state is None


def test_file_has_documented_layout_for_plain_h5py(tmp_path):
    model = dn.models.get("lenet5", seed=0)
    opt = dn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    set_grads(model, 1)
    opt.step()
    path = ck.save(model, tmp_path / "m.h5", optimizer=opt, history=HISTORY, rng_state={"epoch": 3, "seed": 0},
                   note="hello")
    with h5py.File(path, "r") as f:
        a = f.attrs
        assert a["format"] == "dualnet-checkpoint" and a["format_version"] == 2
        assert a["dualnet_version"] == dn.__version__ and a["device"] == "cpu" and a["dtype"] == "float32"
        assert a["created"].endswith("+00:00") and a["created"][:4].isdigit()
        assert json.loads(a["metadata"]) == {"note": "hello"}
        assert json.loads(f["model"].attrs["config"]) == model.config()
        assert json.loads(f["model"].attrs["spec"]) == {"name": "lenet5", "kwargs": {"seed": 0}}
        names = [n for n, _ in model.named_parameters()]
        assert sorted(f["model/parameters"]) == sorted(names)
        assert "conv1.weight" in names and f["model/parameters/conv1.weight"].shape == (6, 1, 5, 5)
        assert list(f["model/buffers"]) == []  # lenet5 has no buffers; the group is always there
        og = f["optimizer"]
        assert og.attrs["type"] == "SGD" and og.attrs["steps"] == 1
        assert json.loads(og.attrs["hyper"])["momentum"] == 0.9
        assert sorted(og["buffers"], key=int) == [str(i) for i in range(len(names))]
        assert list(og["buffers/0"]) == ["velocity"]
        assert json.loads(f["history"].attrs["keys"]) == list(HISTORY[0])
        assert f["history/epoch"].dtype == np.int64 and f["history/lr"].dtype == np.float64
        assert list(f["history/train_loss"][()]) == [h["train_loss"] for h in HISTORY]
        assert json.loads(f["rng"].attrs["state"]) == {"epoch": 3, "seed": 0}
        assert json.loads(f["rng"].attrs["dropout"]) == []
        datasets = []
        f.visititems(lambda n, o: datasets.append(o) if isinstance(o, h5py.Dataset) else None)
        assert datasets and all(d.dtype.kind in "iuf" for d in datasets)  # no object / pickled data


def test_empty_history_is_an_empty_group(tmp_path):
    path = ck.save(tiny(), tmp_path / "m.h5")
    with h5py.File(path, "r") as f:
        assert len(f["history"]) == 0
        assert "optimizer" not in f and "state" not in f["rng"].attrs
    assert ck.read(path).history == []


def test_history_missing_values_become_nan(tmp_path):
    hist = [{"epoch": 1, "val_acc": None}, {"epoch": 2, "val_acc": 0.5, "extra": 3}]
    got = ck.read(ck.save(tiny(), tmp_path / "m.h5", history=hist)).history
    assert got[0]["epoch"] == 1 and math.isnan(got[0]["val_acc"]) and math.isnan(got[0]["extra"])
    assert got[1] == {"epoch": 2, "val_acc": 0.5, "extra": 3.0}


@st.composite
def histories(draw):
    keys = draw(st.lists(st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
                                 min_size=1, max_size=8).filter(lambda k: k not in (".", "..")),
                         max_size=4, unique=True))
    kinds = {k: draw(st.booleans()) for k in keys}
    n = draw(st.integers(0, 5))
    ints, floats = st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False)
    return [{k: draw(ints if kinds[k] else floats) for k in keys} for _ in range(n)] if keys else []


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats(allow_nan=False)
                           | st.text(), lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


SAVE_ARGS = ("optimizer", "history", "rng_state")


@settings(deadline=None)
@given(history=histories(), metadata=st.dictionaries(st.text(max_size=6).filter(lambda k: k not in SAVE_ARGS),
                                                     json_values, max_size=4),
       rng_state=st.none() | st.dictionaries(st.text(max_size=6), json_values, max_size=3))
def test_history_metadata_and_rng_state_round_trip(tmp_path_factory, history, metadata, rng_state):
    path = tmp_path_factory.mktemp("prop") / "m.h5"
    ckpt = ck.read(ck.save(tiny(), path, history=history, rng_state=rng_state, **metadata))
    assert ckpt.history == history and ckpt.metadata == metadata and ckpt.rng_state == rng_state


def test_model_and_path_are_valid_metadata_keys(tmp_path):
    path = ck.save(tiny(), tmp_path / "m.h5", model="lenet5", path="runs/x")
    assert ck.read(path).metadata == {"model": "lenet5", "path": "runs/x"}


def test_numpy_scalars_in_metadata_are_accepted(tmp_path):
    path = ck.save(tiny(), tmp_path / "m.h5", acc=np.float32(0.5), n=np.int64(3), v=np.arange(2))
    assert ck.read(path).metadata == {"acc": 0.5, "n": 3, "v": [0, 1]}


def test_dropout_rng_state_is_restored(tmp_path):
    model = tiny(seed=4)
    x = np.random.default_rng(1).random((3, 1, 8, 8)).astype(np.float32)
    for _ in range(3):  # advance the dropout generator away from its seed
        model(x)
    ckpt = ck.read(ck.save(model, tmp_path / "m.h5"))
    assert_identical(model(x), ckpt.model(x))
    assert ckpt.model[4].rng.bit_generator.state == model[4].rng.bit_generator.state


def test_read_onto_another_device(tmp_path):
    model = tiny(seed=2)
    path = ck.save(model, tmp_path / "m.h5")
    ckpt = ck.read(path, device="emu")
    assert ckpt.model.device.name == "emu"
    assert all(p.device.name == "emu" for p in ckpt.model.parameters())
    assert_same_parameters(model, ckpt.model)
    with dn.device("emu"):  # the active device is the default
        assert ck.read(path).model.device.name == "emu"


def test_unusable_device_is_reported_as_such(tmp_path):
    path = dn.save(tiny(), tmp_path / "m.h5")  # the lazy top-level alias
    from dualnet.backend import _cupy_status

    if _cupy_status(0)[0]:
        pytest.skip("a GPU is usable here")
    with pytest.raises(dn.DeviceUnavailableError):
        ck.read(path, device="gpu")


@pytest.mark.gpu
def test_gpu_round_trip(tmp_path):
    model = dn.models.get("lenet5", seed=5)
    set_grads(model, 0)
    model.to("gpu")
    opt = dn.optim.Adam(model.parameters())
    opt.step()
    path = ck.save(model, tmp_path / "m.h5", optimizer=opt)
    with h5py.File(path, "r") as f:
        assert f.attrs["device"] == "gpu:0"
    ckpt = ck.read(path, device="gpu")
    assert ckpt.model.device.name == "gpu:0"
    assert_same_parameters(model, ckpt.model)
    opt2 = ckpt.make_optimizer()
    for a, b in zip(opt.params, opt2.params):
        for k in a.state:
            assert_identical(a.state[k], b.state[k])
    assert_same_parameters(model, ck.read(path, device="cpu").model)


# --- optimizer state ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [
    lambda ps: dn.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda ps: dn.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-7, weight_decay=1e-4),
], ids=["sgd-momentum", "adam"])
def test_optimizer_state_round_trip_and_continuation(tmp_path, make, dtype):
    model = tiny(seed=1, dtype=dtype)
    opt = make(model.parameters())
    for s in range(3):
        set_grads(model, s)
        opt.step()
    path = ck.save(model, tmp_path / "m.h5", optimizer=opt)
    ckpt = ck.read(path)
    state = ckpt.optimizer_state
    assert state["type"] == type(opt).__name__ and state["steps"] == 3
    assert json.loads(json.dumps(opt.hyperparameters())) == state["hyper"]
    assert sorted(state["buffers"]) == list(range(len(opt.params)))
    for i, p in enumerate(opt.params):
        assert sorted(state["buffers"][i]) == sorted(p.state)
        for k, v in p.state.items():
            assert_identical(v, state["buffers"][i][k])
    opt2 = ckpt.make_optimizer()
    assert type(opt2) is type(opt) and opt2.steps == 3 and opt2.params == list(ckpt.model.parameters())
    for s in range(3, 6):
        set_grads(model, s)
        set_grads(ckpt.model, s)
        opt.step()
        opt2.step()
    assert opt2.steps == opt.steps == 6
    assert_same_parameters(model, ckpt.model)
    for a, b in zip(opt.params, opt2.params):
        for k in a.state:
            assert_identical(a.state[k], b.state[k])


def test_load_into_a_given_optimizer(tmp_path):
    model = tiny(seed=1)
    opt = dn.optim.Adam(model.parameters(), lr=0.02)
    set_grads(model, 0)
    opt.step()
    path = ck.save(model, tmp_path / "m.h5", optimizer=opt)
    fresh = dn.optim.Adam(tiny(seed=9).parameters())
    loaded = ck.load(path, optimizer=fresh)
    assert fresh.params == list(loaded.parameters()) and fresh.steps == 1 and fresh.lr == 0.02
    for a, b in zip(opt.params, fresh.params):
        assert_identical(a.state["m"], b.state["m"])
    with pytest.raises(CheckpointError, match=r"m\.h5.*holds Adam state.*SGD"):
        ck.load(path, optimizer=dn.optim.SGD(tiny().parameters()))
    bare = ck.save(model, tmp_path / "bare.h5")
    with pytest.raises(CheckpointError, match=r"bare\.h5.*no optimizer state"):
        ck.load(bare, optimizer=dn.optim.Adam(tiny().parameters()))


def test_optimizer_over_other_parameters_is_refused(tmp_path):
    model = tiny()
    with pytest.raises(CheckpointError, match="optimizer does not optimize"):
        ck.save(model, tmp_path / "m.h5", optimizer=dn.optim.SGD(tiny().parameters()))
    assert no_temp_files(tmp_path) and not (tmp_path / "m.h5").exists()


def test_a_models_input_normalization_survives_save_and_load_and_a_second_save(tmp_path):
    model = tiny()
    norm = {"mean": [0.13], "std": [0.31]}
    model.normalization = norm
    dn.save(model, tmp_path / "a.h5")
    loaded = dn.load(tmp_path / "a.h5")
    assert dn.data.model_normalization(loaded) == norm
    dn.save(loaded, tmp_path / "b.h5")  # loaded models keep it in their metadata only
    assert dn.data.model_normalization(dn.load(tmp_path / "b.h5")) == norm
    # an explicit metadata value wins over the model's own
    other = {"mean": [0.5], "std": [0.5]}
    dn.save(model, tmp_path / "c.h5", normalization=other)
    assert dn.load(tmp_path / "c.h5").metadata["normalization"] == other
