"""dn.save refuses, before creating or replacing anything, a model dn.load could not rebuild;
nested Sequential and Residual (with a registered custom layer inside) save and load."""

from __future__ import annotations

import numpy as np
import pytest
from checkpoint_helpers import assert_identical, assert_same_parameters, no_temp_files

import dualnet as dn
from dualnet import layers as L
from dualnet.errors import CheckpointError

# each test registers its own classes; the layer registry is as before afterwards (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("restored_layer_registry")


class Shift(L.Layer):
    """y = x + shift per feature; x: (N, features). `config_features` fakes a config() bug."""

    def __init__(self, features: int, config_features: int | None = None, buffer_dtype=np.float32):
        super().__init__()
        self.features, self.config_features = features, config_features
        self.shift = L.Parameter(np.arange(features, dtype=np.float32), "shift")
        self.register_buffer("calls", np.zeros(features, buffer_dtype))

    def config(self) -> dict:
        return {"features": self.features if self.config_features is None else self.config_features}

    def forward(self, x):
        self.calls = self.calls + 1
        return x + self.shift.data

    def backward(self, dy, need_input_grad=True):
        self.shift.grad += dy.sum(axis=0)
        return dy


class Needy(Shift):
    """A layer whose config() forgets a required argument."""

    def config(self) -> dict:
        return {}


class ReLU(L.Layer):  # the name of a dualnet layer, another class
    def forward(self, x):
        return x


def _model(layer: L.Layer) -> L.Sequential:
    return L.Sequential(L.Flatten(), L.Linear(4, 3, seed=0), L.Residual(L.Sequential(layer)), input_shape=(1, 2, 2))


def _refused(tmp_path, model, problem: str) -> None:
    """Refused naming `problem`; neither a new folder nor a changed earlier file nor a temporary file."""
    earlier = dn.save(L.Sequential(L.Linear(2, 2)), tmp_path / "kept.h5")
    before = earlier.read_bytes()
    for target in (tmp_path / "new" / "m.h5", earlier):
        with pytest.raises(CheckpointError, match=problem) as info:
            dn.save(model, target)
        assert str(target) in str(info.value)
    assert not (tmp_path / "new").exists()
    assert earlier.read_bytes() == before and no_temp_files(tmp_path)


def test_an_unregistered_layer_is_refused_naming_its_path_class_and_the_fix(tmp_path):
    _refused(tmp_path, _model(Shift(3)), r"layer res1\.body\.layer1 is a .*test_checkpoint_loadable\.Shift, which "
                                         r"is not registered.*call dn\.layers\.register\(Shift\)")


def test_a_class_named_like_another_registered_one_is_refused(tmp_path):
    _refused(tmp_path, _model(ReLU()), r"layer res1\.body\.layer1 is a .*test_checkpoint_loadable\.ReLU, but the "
                                       r"name 'ReLU' is registered for dualnet\.layers\.elementwise\.ReLU")


def test_a_config_that_does_not_rebuild_its_layer_is_refused_naming_it(tmp_path):
    L.register(Needy)
    _refused(tmp_path, _model(Needy(3)), r"layer res1\.body\.layer1 \(Needy\) cannot be rebuilt from its config\(\) "
                                         r"\{\} \(TypeError: .*features.*make its config\(\) return")


def test_a_config_that_rebuilds_other_shapes_is_refused_naming_the_parameter(tmp_path):
    L.register(Shift)
    _refused(tmp_path, _model(Shift(3, config_features=5)),
             r"parameter res1\.body\.layer1\.shift is \(5,\) there but \(3,\) in the model")


def test_a_buffer_of_another_dtype_than_the_rebuilt_one_is_refused(tmp_path):
    L.register(Shift)
    _refused(tmp_path, _model(Shift(3, buffer_dtype=np.float64)),
             r"buffer res1\.body\.layer1\.calls is \(\(3,\), 'float32'\) there but \(\(3,\), 'float64'\)")


def test_a_parameter_hidden_after_construction_is_refused(tmp_path):
    L.register(Shift)
    model = _model(Shift(3))
    model["res1"].body[0]._extra = L.Parameter(np.zeros(2, np.float32), "extra")
    _refused(tmp_path, model, r"layer res1\.body\.layer1 holds Parameter\(extra.*in _extra, which parameters\(\) "
                              "does not find")


def test_nested_sequential_and_residual_with_a_custom_layer_save_and_load(tmp_path):
    L.register(Shift)
    block = L.Residual(L.Sequential(L.Linear(3, 3, seed=1), L.BatchNorm1d(3), Shift(3)),
                       L.Sequential(L.Linear(3, 3, seed=2)))
    model = L.Sequential(L.Flatten(), L.Sequential(L.Linear(4, 3, seed=0), L.ReLU(), block), L.Linear(3, 2, seed=3),
                         input_shape=(1, 2, 2))
    x = np.random.default_rng(0).random((6, 1, 2, 2)).astype(np.float32)
    model(x), model(x)
    loaded = dn.load(dn.save(model, tmp_path / "nested.h5"))
    assert loaded.config() == model.config()
    assert_same_parameters(model, loaded)
    buffers, again = dict(model.named_buffers()), dict(loaded.named_buffers())
    assert list(buffers) == list(again) and "seq1.res1.body.layer1.calls" in buffers
    for name in buffers:
        assert_identical(buffers[name], again[name])
    model.eval(), loaded.eval()
    assert_identical(model(x), loaded(x))
