"""ZeroPad2d / ConstantPad2d / ReflectionPad2d / ReplicationPad2d: values, gradients, PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_reference import assert_same, dualnet_run, torch_run

import dualnet as dn
from dualnet import layers as L
from dualnet.testing import uniform

NUMPY_MODE = {L.ZeroPad2d: "constant", L.ReflectionPad2d: "reflect", L.ReplicationPad2d: "edge"}


@st.composite
def pad_cases(draw, cls=None, crop=False):
    """(layer class, (left, right, top, bottom), input shape (n, c, h, w)); reflection pads stay
    below the input size, a constant pad may crop when `crop`."""
    cls = cls or draw(st.sampled_from([L.ZeroPad2d, L.ConstantPad2d, L.ReflectionPad2d, L.ReplicationPad2d]))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    if cls is L.ReflectionPad2d:
        h, w = max(h, 2), max(w, 2)
        pads = [draw(st.integers(0, w - 1)) for _ in range(2)] + [draw(st.integers(0, h - 1)) for _ in range(2)]
    else:
        low = -1 if crop and cls in (L.ZeroPad2d, L.ConstantPad2d) and min(h, w) > 2 else 0
        pads = [draw(st.integers(low, 4)) for _ in range(4)]
    return cls, tuple(pads), (draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w)


def _layer(cls, pads, value=1.5):
    return cls(pads, value) if cls is L.ConstantPad2d else cls(pads)


@given(pad_cases(), st.integers(0, 2**16))
def test_padding_equals_numpy_pad(case, seed):
    cls, (left, right, top, bottom), shape = case
    x = uniform(shape, seed)
    mode = NUMPY_MODE.get(cls, "constant")
    kwargs = {"constant_values": 1.5} if cls is L.ConstantPad2d else {}
    want = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode=mode, **kwargs)
    np.testing.assert_array_equal(_layer(cls, (left, right, top, bottom))(x), want)


@given(pad_cases(crop=True), st.integers(0, 2**16))
def test_padding_backward_is_the_adjoint_of_forward(case, seed):
    """<pad(x), dy> == <x, pad_backward(dy)> for every x and dy: backward is forward's transpose."""
    cls, pads, shape = case
    layer = _layer(cls, pads, 0.0)
    x = uniform(shape, seed)
    y = layer(x)
    dy = uniform(y.shape, seed + 1)
    np.testing.assert_allclose((y * dy).sum(), (x * layer.backward(dy)).sum(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls", [L.ZeroPad2d, L.ReflectionPad2d, L.ReplicationPad2d])
def test_padding_gradcheck(cls):
    dn.gradcheck(cls((1, 2, 2, 1)), uniform((2, 2, 3, 4), 7))


def test_padding_errors_name_the_layer_and_the_fix():
    with pytest.raises(ValueError, match="ReflectionPad2d: reflection padding .* smaller than the 3x3 input"):
        L.ReflectionPad2d(3)(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="ReplicationPad2d: padding must be >= 0"):
        L.ReplicationPad2d(-1)
    with pytest.raises(ValueError, match=r"ZeroPad2d: padding must be an int or a \(left, right, top, bottom\)"):
        L.ZeroPad2d((1, 2))
    with pytest.raises(ValueError, match="ZeroPad2d: padding .* leaves an empty"):
        L.ZeroPad2d((0, 0, -2, -1))(np.zeros((1, 1, 3, 3)))


@pytest.mark.parametrize("dev", ["ref", "cpu", "emu"])
@settings(max_examples=10)
@given(pad_cases(crop=True), st.integers(0, 2**16))
def test_padding_matches_pytorch_forward_and_backward(dev, case, seed):
    torch = pytest.importorskip("torch")
    cls, pads, shape = case
    module = (torch.nn.ConstantPad2d(pads, 1.5) if cls is L.ConstantPad2d
              else getattr(torch.nn, cls.__name__)(pads))
    x = uniform(shape, seed)
    dy = uniform(module(torch.from_numpy(x)).shape, seed + 1)
    assert_same(dualnet_run(dev, _layer(cls, pads), x, dy), torch_run(module, x, dy))
