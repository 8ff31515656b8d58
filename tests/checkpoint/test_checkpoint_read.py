"""Reading checkpoints: every damaged, foreign or mismatched file raises CheckpointError naming it and the problem."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from checkpoint_helpers import HISTORY, set_grads, tiny

import dualnet as dn
from dualnet import checkpoint as ck
from dualnet.errors import CheckpointError

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
