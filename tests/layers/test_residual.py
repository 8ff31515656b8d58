"""Residual, nesting and custom layers: gradients, the sum of paths, discovery of parameters,
configs that round-trip through the registry, and nested summaries."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dualnet as dn
from dualnet import layers as L
from dualnet.errors import GradcheckError
from dualnet.testing import assert_devices_agree, uniform


def _block(c_in, c_out, stride, seed):
    body = L.Sequential(L.Conv2d(c_in, c_out, 3, stride=stride, padding=1, seed=seed), L.BatchNorm2d(c_out),
                        L.LeakyReLU(0.1), L.Conv2d(c_out, c_out, 3, padding=1, seed=seed + 1))
    shortcut = None
    if stride != 1 or c_in != c_out:
        shortcut = L.Sequential(L.Conv2d(c_in, c_out, 1, stride=stride, bias=False, seed=seed + 2),
                                L.BatchNorm2d(c_out))
    return L.Residual(body, shortcut)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(2, 6), st.integers(0, 2**16))
def test_residual_gradient_matches_numerical(c_in, c_out, stride, size, seed):
    block = _block(c_in, c_out, stride, seed)
    dn.gradcheck(block, uniform((2, c_in, size, size), seed), rtol=1e-6)


@given(st.booleans(), st.integers(0, 2**16))
def test_residual_is_the_sum_of_its_paths_forward_and_backward(identity, seed):
    block = _block(2, 2 if identity else 3, 1, seed).astype(np.float64)
    x = uniform((3, 2, 4, 4), seed)
    y = block(x)
    body_y = block.body(x)
    side_y = x if identity else block.shortcut(x)
    np.testing.assert_allclose(y, body_y + side_y, rtol=1e-12, atol=1e-14)
    dy = uniform(y.shape, seed + 1)
    block.zero_grad()
    dx = block.backward(dy)  # the caches are of the separate calls above, path by path
    want = block.body.backward(dy) + (dy if identity else block.shortcut.backward(dy))
    np.testing.assert_allclose(dx, want, rtol=1e-12, atol=1e-14)


def test_residual_agrees_on_ref_cpu_and_emu():
    def step(x, dy):
        block = _block(2, 3, 2, 5).astype(np.float64)
        y = block(x)
        return (y, block.backward(dy), *(p.grad for p in block.parameters()), *(b for _, b in block.named_buffers()))

    assert_devices_agree(step, uniform((2, 2, 6, 6), 1), uniform((2, 3, 3, 3), 2))


def test_residual_without_input_gradient_still_accumulates_parameter_gradients():
    block = _block(2, 3, 2, 0).astype(np.float64)
    x, dy = uniform((2, 2, 4, 4), 0), uniform((2, 3, 2, 2), 1)
    block(x)
    assert block.backward(dy, need_input_grad=False) is None
    grads = [p.grad.copy() for p in block.parameters()]
    block.zero_grad()
    block(x)
    block.backward(dy)
    for a, p in zip(grads, block.parameters()):
        np.testing.assert_allclose(a, p.grad, rtol=1e-12, atol=1e-14)


def test_residual_with_mismatched_paths_names_both_shapes():
    block = L.Residual(L.Conv2d(2, 3, 1))
    with pytest.raises(ValueError, match=r"Residual: the body maps \(2, 4, 4\) to \(3, 4, 4\) but the "
                                         r"shortcut to \(2, 4, 4\)"):
        block.output_shape((2, 4, 4))
    with pytest.raises(ValueError, match="shortcut"):
        block(np.zeros((1, 2, 4, 4), np.float32))


def test_nested_parameters_buffers_and_modes_reach_every_layer():
    model = L.Sequential(L.Conv2d(2, 2, 3, padding=1), _block(2, 4, 2, 0), L.GlobalAvgPool2d(), L.Linear(4, 3))
    names = [n for n, _ in model.named_parameters()]
    assert "res1.body.conv1.weight" in names and "res1.shortcut.bn1.bias" in names
    assert len(names) == len(set(names)) == len(list(model.parameters()))
    assert "res1.shortcut.bn1.running_var" in dict(model.named_buffers())
    model.eval()
    assert not model["res1"].body["bn1"].training and not model["res1"].shortcut["bn1"].training
    model.train()
    assert model["res1"].shortcut["bn1"].training
    model.astype(np.float64)
    assert all(p.data.dtype == np.float64 for p in model.parameters())
    assert model["res1"].body["bn1"].running_mean.dtype == np.float64


def _copy_weights(src, dst):
    for (name, p), (other, q) in zip(src.named_parameters(), dst.named_parameters()):
        assert name == other
        q.data[...] = p.data


def test_nested_sequential_and_residual_round_trip_through_config():
    model = L.Sequential(L.Conv2d(3, 4, 3, padding=1), L.BatchNorm2d(4), L.ReLU(), _block(4, 8, 2, 3),
                         L.Sequential(L.LeakyReLU(0.2), L.GlobalAvgPool2d()), L.Linear(8, 5), input_shape=(3, 8, 8))
    again = L.from_config(model.config())
    assert again.config() == model.config()
    _copy_weights(model, again)
    x = uniform((2, 3, 8, 8), 0, np.float32)
    np.testing.assert_array_equal(model(x), again(x))


class Scale(L.Layer):
    """A custom layer: y = x * scale per channel, with one Parameter and no declaration of it."""

    def __init__(self, channels: int, wrong: bool = False):
        super().__init__()
        self.channels, self.wrong = channels, wrong
        self.scale = L.Parameter(np.linspace(0.5, 1.5, channels).astype(np.float32), "scale")

    def config(self):
        return dict(channels=self.channels, wrong=self.wrong)

    def forward(self, x):
        self._cache = x
        return x * self.scale.data.reshape(1, -1, 1, 1)

    def backward(self, dy, need_input_grad=True):
        x = self._need_cache()
        self.scale.grad += (dy * x).sum(axis=(0, 2, 3)) * (2 if self.wrong else 1)
        return dy * self.scale.data.reshape(1, -1, 1, 1)


def test_a_custom_layer_parameter_is_found_trained_and_checked():
    layer = Scale(3)
    assert [n for n, _ in layer.named_parameters()] == ["scale"]
    model = L.Sequential(L.Conv2d(2, 3, 1), Scale(3))
    assert list(dict(model.named_parameters())) == ["conv1.weight", "conv1.bias", "layer1.scale"]
    x = uniform((2, 3, 3, 3), 0)
    dn.gradcheck(layer, x)
    with pytest.raises(GradcheckError, match="scale"):  # a wrong gradient of it is caught
        dn.gradcheck(Scale(3, wrong=True), x)


def test_a_registered_custom_layer_round_trips_through_config():
    model = L.Sequential(L.Conv2d(2, 3, 1), L.Residual(L.Sequential(Scale(3))))
    with pytest.raises(ValueError, match="unknown layer type 'Scale'.*register"):
        L.from_config(model.config())
    L.register(Scale)
    try:
        again = L.from_config(model.config())
        assert again.config() == model.config()
        assert type(again[1].body[0]) is Scale
    finally:
        del L.LAYER_TYPES["Scale"]


def test_summary_lists_nested_layers_with_shapes_and_counts():
    model = L.Sequential(L.Conv2d(1, 2, 3, padding=1), _block(2, 4, 2, 0), L.GlobalAvgPool2d(), L.Linear(4, 3),
                         input_shape=(1, 6, 6))
    text = model.summary(file=open("/dev/null", "w"))  # noqa: SIM115
    lines = text.splitlines()
    body = next(line for line in lines if line.strip().startswith("body"))
    assert "4x3x3" in body and body.startswith("  body")
    assert any(line.startswith("    conv1") for line in lines)
    assert f"{model.num_parameters():,} trainable parameters" in text


def test_sequential_names_continue_after_named_parts():
    first = L.Sequential(L.Conv2d(1, 1, 1), L.ReLU())
    model = L.Sequential(*first.layers, L.Conv2d(1, 1, 1), L.ReLU())
    assert [lay.name for lay in model.layers] == ["conv1", "relu1", "conv2", "relu2"]
    with pytest.raises(ValueError, match="unique"):
        relu = L.ReLU()
        L.Sequential(relu, L.Conv2d(1, 1, 1), relu)


@pytest.mark.parametrize("device", ["ref", "cpu", "emu"])
@pytest.mark.parametrize("make", [lambda: L.Conv2d(2, 3, 3, stride=2, padding=1, seed=1),
                                  lambda: L.Sequential(L.Conv2d(2, 3, 3, padding=1, seed=1), L.ReLU()),
                                  lambda: L.Sequential(L.BatchNorm2d(2), L.LeakyReLU(0.1)), lambda: L.ReLU()],
                         ids=["conv", "conv+relu", "bn+leaky", "default"])
def test_backward_add_is_the_input_gradient_plus_the_addend_bit_for_bit(device, make):
    """Layer.backward_add(dy, a) == backward(dy) + a exactly, parameter gradients alike, whether the
    layer's op sums it (Conv2d, a fused ConvReLU step) or the default adds after."""
    with dn.device(device):
        layer = make().astype(np.float64)
    x, a = uniform((2, 2, 5, 5), 3), uniform((2, 2, 5, 5), 4)
    xd, ad = dn.to_device(x, device), dn.to_device(a, device)
    dy = dn.to_device(uniform(tuple(layer(xd).shape), 5), device)
    layer.zero_grad()
    want = dn.to_numpy(layer.backward(dy)) + a
    grads = [dn.to_numpy(p.grad).copy() for p in layer.parameters()]
    layer.zero_grad()
    layer(xd)
    np.testing.assert_array_equal(dn.to_numpy(layer.backward_add(dy, ad)), want)
    for g, p in zip(grads, layer.parameters()):
        np.testing.assert_array_equal(dn.to_numpy(p.grad), g)


def test_backward_add_refuses_an_addend_of_another_shape():
    conv = L.Conv2d(2, 3, 3, padding=1)
    conv(np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(dn.UsageError, match=r"addend has shape \(1, 2, 4, 5\), expected the input's \(1, 2, 4, 4\)"):
        conv.backward_add(np.zeros((1, 3, 4, 4), np.float32), np.zeros((1, 2, 4, 5), np.float32))
