"""Checkpoints: round trips, the documented HDF5 layout, atomic writes and every validation error."""

from __future__ import annotations

import json
import math
import os
import pathlib

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dualnet as dn
from dualnet import checkpoint as ck
from dualnet.errors import CheckpointError
from dualnet.layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from dualnet.layers import Sequential

HISTORY = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.9 + e / 100, "val_acc": 0.95, "seconds": 12.5,
            "images_per_s": 4000.0 + e, "lr": 0.01 / e} for e in (1, 2, 3)]


def tiny(seed: int = 0, dtype=np.float32) -> Sequential:
    """1x8x8 -> conv 2x3x3 -> pool -> 18 -> dropout -> 4."""
    return Sequential(Conv2d(1, 2, 3, dtype=dtype, seed=seed), ReLU(), MaxPool2d(2), Flatten(),
                      Dropout(0.5, seed=seed + 7), Linear(18, 4, dtype=dtype, seed=seed + 1), input_shape=(1, 8, 8))


def assert_identical(a, b) -> None:
    a, b = dn.to_numpy(a), dn.to_numpy(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def assert_same_parameters(m1, m2) -> None:
    n1, n2 = dict(m1.named_parameters()), dict(m2.named_parameters())
    assert list(n1) == list(n2)
    for name in n1:
        assert_identical(n1[name].data, n2[name].data)


def no_temp_files(folder: pathlib.Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp-" in p.name or ".probe-" in p.name]


def set_grads(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.grad[...] = rng.standard_normal(p.shape).astype(p.data.dtype)


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
        assert a["format"] == "dualnet-checkpoint" and a["format_version"] == 1
        assert a["dualnet_version"] == dn.__version__ and a["device"] == "cpu" and a["dtype"] == "float32"
        assert a["created"].endswith("+00:00") and a["created"][:4].isdigit()
        assert json.loads(a["metadata"]) == {"note": "hello"}
        assert json.loads(f["model"].attrs["config"]) == model.config()
        assert json.loads(f["model"].attrs["spec"]) == {"name": "lenet5", "kwargs": {"seed": 0}}
        names = [n for n, _ in model.named_parameters()]
        assert sorted(f["model/parameters"]) == sorted(names)
        assert "conv1.weight" in names and f["model/parameters/conv1.weight"].shape == (6, 1, 5, 5)
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


# --- refusing to save -----------------------------------------------------------------------


def test_unserialisable_metadata_names_the_key(tmp_path):
    with pytest.raises(CheckpointError, match=r"m\.h5.*metadata 'bad'.*JSON"):
        ck.save(tiny(), tmp_path / "m.h5", good=1, bad=object())
    with pytest.raises(CheckpointError, match=r"history key 'loss'.*numbers"):
        ck.save(tiny(), tmp_path / "m.h5", history=[{"loss": "high"}])
    with pytest.raises(CheckpointError, match="rng_state"):
        ck.save(tiny(), tmp_path / "m.h5", rng_state={"gen": object()})
    assert list(tmp_path.iterdir()) == []


def test_non_finite_parameters_are_not_saved_over_a_good_file(tmp_path):
    good = tiny(seed=1)
    path = ck.save(good, tmp_path / "m.h5")
    bad = tiny(seed=2)
    bad[0].weight.data[0, 0, 0, 0] = np.nan
    with pytest.raises(CheckpointError, match=r"conv1\.weight.*non-finite"):
        ck.save(bad, path)
    assert_same_parameters(good, ck.read(path).model)


def test_save_to_a_directory_is_an_error(tmp_path):
    with pytest.raises(CheckpointError, match="existing directory"):
        ck.save(tiny(), tmp_path)


def test_save_creates_missing_folders(tmp_path):
    path = ck.save(tiny(), tmp_path / "a" / "b" / "m.h5")
    assert path.is_file()


# --- atomic writes --------------------------------------------------------------------------


@pytest.mark.parametrize("error", [RuntimeError("boom"), OSError(28, "No space left on device")])
def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path, monkeypatch, error):
    first = tiny(seed=1)
    path = ck.save(first, tmp_path / "m.h5", history=HISTORY)
    before = path.read_bytes()

    def write_half(f, data):  # parameters written, then the failure
        f.attrs["format"] = "dualnet-checkpoint"
        f.create_group("model/parameters").create_dataset("conv1.weight", data=np.zeros(3))
        raise error

    monkeypatch.setattr(ck, "_write", write_half)
    expected = CheckpointError if isinstance(error, OSError) else RuntimeError
    with pytest.raises(expected) as info:
        ck.save(tiny(seed=2), path, history=HISTORY[:1])
    if expected is CheckpointError:
        assert str(path) in str(info.value) and "No space left" in str(info.value)
    assert path.read_bytes() == before and no_temp_files(tmp_path)
    ckpt = ck.read(path)
    assert_same_parameters(first, ckpt.model) and ckpt.history == HISTORY


def test_failed_rename_keeps_previous_file(tmp_path, monkeypatch):
    first = tiny(seed=1)
    path = ck.save(first, tmp_path / "m.h5")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ck.os, "replace", refuse)
    with pytest.raises(CheckpointError, match=r"m\.h5.*Permission denied"):
        ck.save(tiny(seed=2), path)
    monkeypatch.undo()
    assert no_temp_files(tmp_path)
    assert_same_parameters(first, ck.read(path).model)


def test_interrupt_mid_write_keeps_previous_file(tmp_path, monkeypatch):
    first = tiny(seed=1)
    path = ck.save(first, tmp_path / "m.h5")
    calls = []
    real = h5py.Group.create_dataset

    def interrupt(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", interrupt)
    with pytest.raises(KeyboardInterrupt):
        ck.save(tiny(seed=2), path)
    monkeypatch.undo()
    assert no_temp_files(tmp_path)
    assert_same_parameters(first, ck.read(path).model)


# --- validation on read ---------------------------------------------------------------------


@pytest.fixture
def good_file(tmp_path):
    model = tiny(seed=1)
    opt = dn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    set_grads(model, 0)
    opt.step()
    return ck.save(model, tmp_path / "victim.h5", optimizer=opt, history=HISTORY)


def _edit(fn):
    def apply(path):
        with h5py.File(path, "r+") as f:
            fn(f)
    return apply


def _replace(name, data=None, **kwargs):
    def fn(f):
        del f[name]
        f.create_dataset(name, data=data, **kwargs)
    return _edit(fn)


def _set_attr(node, key, value):
    def fn(f):
        f[node].attrs[key] = value
    return _edit(fn)


def _config_edit(change):
    def fn(f):
        config = json.loads(f["model"].attrs["config"])
        change(config)
        f["model"].attrs["config"] = json.dumps(config)
    return _edit(fn)


def _write_text(path):
    path.write_text("this is not HDF5\n")


def _foreign_hdf5(path):
    path.unlink()
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.zeros((2, 3)))


def _del(name):
    def fn(f):
        del f[name]
    return _edit(fn)


def _del_attr(node, key):
    def fn(f):
        del f[node].attrs[key]
    return _edit(fn)


def _corrupt(path):
    with h5py.File(path, "r") as f:  # flip the bytes of a compressed parameter's data
        ds = f["model/parameters/conv1.weight"]
        offset, size = ds.id.get_chunk_info(0).byte_offset, ds.id.get_chunk_info(0).size
    data = bytearray(path.read_bytes())
    data[offset:offset + size] = bytes(b ^ 0xFF for b in data[offset:offset + size])
    path.write_bytes(bytes(data))


P = "model/parameters/"
BAD_FILES = {
    "missing": (lambda p: p.unlink(), "no such file"),
    "not-hdf5": (_write_text, "not an HDF5 file"),
    "foreign-hdf5": (_foreign_hdf5, "not a dualnet checkpoint"),
    "other-format": (_set_attr("/", "format", "keras"), "not a dualnet checkpoint (root attribute 'format' is 'keras'"),
    "newer-format": (_set_attr("/", "format_version", 7), "written by a newer dualnet (format 7); upgrade dualnet"),
    "no-model-group": (_del("model"), "missing group 'model'"),
    "no-config": (_del_attr("model", "config"), "missing attribute 'config'"),
    "config-not-json": (_set_attr("model", "config", "{oops"), "attribute 'config' of group 'model' is not valid JSON"),
    "unknown-layer": (_config_edit(lambda c: c["layers"][1].update(type="Bogus")), "unknown layer type 'Bogus'"),
    "bad-layer-config": (_config_edit(lambda c: c["layers"][0]["config"].update(kernel_size=[0, 3])),
                         "bad model config: Conv2d: kernel_size must be >= 1"),
    "config-extra-arg": (_config_edit(lambda c: c["layers"][0]["config"].update(colour="red")), "bad model config"),
    "no-parameters-group": (_del("model/parameters"), "missing group 'model/parameters'"),
    "missing-parameter": (_del(P + "fc1.bias"), "missing parameter fc1.bias"),
    "wrong-shape": (_replace(P + "conv1.weight", np.zeros((2, 1, 5, 5), np.float32)),
                    "parameter conv1.weight has shape (2, 1, 5, 5) in the file but the model needs (2, 1, 3, 3)"),
    "architecture-changed": (_config_edit(lambda c: c["layers"][5]["config"].update(out_features=5)),
                             "parameter fc1.weight has shape (4, 18) in the file but the model needs (5, 18)"),
    "wrong-dtype": (_replace(P + "fc1.bias", np.zeros(4, np.float64)), "fc1.bias has dtype float64 in the file"),
    "extra-parameter": (_edit(lambda f: f.create_dataset(P + "fc9.weight", data=np.zeros(3, np.float32))),
                        "unexpected parameters not in the model architecture: fc9.weight"),
    "nan-parameter": (_replace(P + "fc1.bias", np.array([0, np.nan, 0, np.inf], np.float32)),
                      "parameter fc1.bias contains 2 non-finite values"),
    "huge-declared-shape": (_replace(P + "fc1.weight", shape=(200_000, 200_000), dtype=np.float32, chunks=(64, 64)),
                            "has shape (200000, 200000) in the file but the model needs (4, 18)"),
    "huge-architecture": (_config_edit(lambda c: c["layers"][5]["config"].update(in_features=10**6,
                                                                                 out_features=10**6)),
                          "the architecture in 'config' needs 1,000,001,000,020 parameters but the file stores 96"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:3000]), "damaged or truncated HDF5 file (Unable"),
    "corrupted": (_corrupt, "damaged or unreadable"),
    "bad-dtype-attr": (_set_attr("/", "dtype", "int8"), "unsupported parameter dtype 'int8'"),
    "buffer-shape": (_replace("optimizer/buffers/2/velocity", np.zeros((4, 17), np.float32)),
                     "optimizer buffer 2/velocity has shape (4, 17) in the file but the model needs (4, 18)"),
    "buffer-dtype": (_replace("optimizer/buffers/0/velocity", np.zeros((2, 1, 3, 3), np.float16)),
                     "optimizer buffer 0/velocity has dtype float16 in the file but the checkpoint's dtype is float32"),
    "buffer-nan": (_replace("optimizer/buffers/1/velocity", np.full(2, np.nan, np.float32)),
                   "optimizer buffer 1/velocity contains 2 non-finite values"),
    "buffer-index": (_edit(lambda f: f.create_group("optimizer/buffers/9")), "optimizer buffers/9 names no parameter"),
    "optimizer-type": (_set_attr("optimizer", "type", "Lion"), "unknown optimizer type 'Lion'"),
    "optimizer-hyper": (_set_attr("optimizer", "hyper", '{"lr": 0.1, "params": 3}'), "bad SGD hyperparameters"),
    "optimizer-lr": (_set_attr("optimizer", "hyper", '{"lr": -1}'), "lr must be a positive finite number"),
    "history-lengths": (_replace("history/lr", np.zeros(2)), "history columns have different lengths [2, 3]"),
    "history-keys": (_set_attr("history", "keys", '["epoch"]'), "history 'keys'"),
    "dropout-states": (_set_attr("rng", "dropout", "[]"), "rng 'dropout' holds 0 states for 1 Dropout layers"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_raises_checkpoint_error_naming_file_and_problem(good_file, case):
    damage, problem = BAD_FILES[case]
    damage(good_file)
    with pytest.raises(CheckpointError) as info:
        ck.read(good_file)
    message = str(info.value)
    assert "victim.h5" in message and problem in message, message
    with pytest.raises(CheckpointError):
        ck.load(good_file)


def test_untouched_fixture_file_is_valid(good_file):
    assert ck.read(good_file).optimizer_state["steps"] == 1


def test_directory_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="is a directory"):
        ck.read(tmp_path)


# --- check_writable ---------------------------------------------------------------------------


def test_check_writable_creates_missing_folders(tmp_path):
    target = tmp_path / "runs" / "deep" / "model.h5"
    assert ck.check_writable(target) == target
    assert target.parent.is_dir() and not target.exists() and no_temp_files(target.parent)
    assert ck.check_writable(str(target)) == target  # existing folder: fine


def test_check_writable_refuses_unwritable_folder(tmp_path):
    if os.geteuid() == 0:  # root ignores permissions: use a regular file as the folder instead
        blocker = tmp_path / "file"
        blocker.write_text("x")
        target = blocker / "sub" / "model.h5"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = locked / "model.h5"
    try:
        with pytest.raises(CheckpointError) as info:
            ck.check_writable(target)
    finally:
        if os.geteuid() != 0:
            locked.chmod(0o700)
    message = str(info.value)
    assert message.startswith(f"cannot write checkpoint to {target}: ") and message.endswith("; choose another --out")


def test_check_writable_refuses_a_directory(tmp_path):
    with pytest.raises(CheckpointError, match=r"existing directory; choose another --out"):
        ck.check_writable(tmp_path)
