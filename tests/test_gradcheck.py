"""The public gradient check finds planted errors and says where."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dualnet as dn
from dualnet import layers as L
from dualnet.testing import uniform


class WrongBiasLinear(L.Linear):
    """A Linear whose bias gradient is off by a factor: gradcheck must catch it."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.bias.grad *= 1.01
        return dx


class WrongInputConv(L.Conv2d):
    def backward(self, dy):
        dx = super().backward(dy)
        dx.reshape(-1)[3] += 1e-3
        return dx


def test_gradcheck_catches_a_wrong_parameter_gradient():
    with pytest.raises(dn.GradcheckError, match=r"gradient of bias is wrong at index \(\d+,\)"):
        dn.gradcheck(WrongBiasLinear(5, 4, seed=0), uniform((3, 5), 0))


def test_gradcheck_catches_one_wrong_input_element_and_names_it():
    with pytest.raises(dn.GradcheckError) as info:
        dn.gradcheck(WrongInputConv(2, 3, 3, seed=0), uniform((1, 2, 5, 5), 0))
    assert "gradient of input is wrong at index (0, 0, 0, 3)" in str(info.value)


def test_gradcheck_report_lists_every_tensor_and_leaves_layer_untouched():
    layer = L.Conv2d(2, 3, 3, seed=0)
    before = layer.weight.data.copy()
    report = dn.gradcheck(layer, uniform((2, 2, 30, 30), 0))
    assert [r.name for r in report.results] == ["input", "weight", "bias"]
    assert report.results[0].method == "directions" and report.results[2].method == "full"
    assert report.passed and layer.weight.data.dtype == np.float32
    np.testing.assert_array_equal(layer.weight.data, before)


# --- stochastic layers at any depth -----------------------------------------------------------


class Jitter(L.Layer):
    """y = x * (1 + 0.5 * noise), noise from a private generator: a stochastic layer that is not a
    Dropout, whose randomness a gradient check must hold fixed like Dropout's."""

    def __init__(self, seed: int = 0):
        super().__init__()
        self._noise = np.random.default_rng(seed)

    def forward(self, x):
        self._cache = dn.to_device(1 + 0.5 * self._noise.standard_normal(tuple(x.shape)), self.device).astype(x.dtype)
        return x * self._cache

    def backward(self, dy, need_input_grad=True):
        return dy * self._need_cache() if need_input_grad else None


def test_gradcheck_passes_a_dropout_nested_in_a_residual():
    """The issue's model: a Dropout two containers deep used to draw a new mask per evaluation."""
    model = dn.Sequential(L.Residual(dn.Sequential(L.Linear(6, 6, seed=1), L.Dropout(0.5))), L.Linear(6, 3, seed=2))
    assert dn.gradcheck(model, uniform((4, 6), 0)).passed


def test_gradcheck_holds_any_stochastic_layers_randomness_fixed_at_any_depth():
    inner = dn.Sequential(L.Linear(4, 4, seed=1), Jitter(seed=3))
    model = dn.Sequential(L.Residual(L.Residual(inner)), L.Linear(4, 2, seed=2))
    assert dn.gradcheck(model, uniform((3, 4), 0)).passed


def _nested(draw, depth: int):
    """A random tree of Sequential and Residual containers over 3 features, holding Linear, Tanh
    and Dropout leaves (and Jitter) at any depth."""
    choice = draw(st.sampled_from(["linear", "tanh", "dropout", "jitter"] + (["seq", "res"] if depth < 3 else [])))
    seed = draw(st.integers(0, 99))
    if choice == "linear":
        return L.Linear(3, 3, seed=seed)
    if choice == "tanh":
        return L.Tanh()
    if choice == "dropout":
        return L.Dropout(draw(st.sampled_from([0.25, 0.5])), seed=seed)
    if choice == "jitter":
        return Jitter(seed)
    parts = [_nested(draw, depth + 1) for _ in range(draw(st.integers(1, 3)))]
    body = dn.Sequential(*parts)
    return body if choice == "seq" else L.Residual(body)


@st.composite
def nested_models(draw):
    return dn.Sequential(_nested(draw, 0), L.Dropout(0.5, seed=draw(st.integers(0, 9))), L.Linear(3, 2, seed=0))


@settings(max_examples=12)
@given(nested_models())
def test_gradcheck_passes_every_correct_model_whatever_its_nesting_of_stochastic_layers(model):
    report = dn.gradcheck(model, uniform((2, 3), 0), raise_on_failure=False)
    assert report.passed, str(report)
