"""ConvTranspose2d: the adjoint of Conv2d, PyTorch's output size, gradients and float64 PyTorch agreement."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_reference import assert_same, copy_parameters, dualnet_run, torch_run

import dualnet as dn
from dualnet import layers as L
from dualnet.testing import uniform


@st.composite
def transposed(draw):
    """(ConvTranspose2d kwargs, input shape) with a non-empty output."""
    groups = draw(st.sampled_from([1, 2]))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    op = tuple(draw(st.integers(0, max(a, b) - 1)) for a, b in zip(s, d))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    out = [(size - 1) * st_ - 2 * pad + dil * (kk - 1) + 1 for size, kk, st_, pad, dil in zip((h, w), k, s, p, d)]
    if min(out) < 1:  # non-empty even without the output padding (the adjoint test drops it)
        p = (0, 0)
    kwargs = dict(in_channels=groups * draw(st.integers(1, 2)), out_channels=groups * draw(st.integers(1, 2)),
                  kernel_size=k, stride=s, padding=p, output_padding=op, groups=groups, bias=draw(st.booleans()),
                  dilation=d)
    return kwargs, (draw(st.integers(1, 2)), kwargs["in_channels"], h, w)


@given(transposed(), st.integers(0, 2**16))
def test_conv_transpose_is_the_adjoint_of_the_convolution_with_the_same_weights(case, seed):
    """<convT(x), y> == <x, conv(y)>: with no bias, no output padding, the same weight array."""
    kwargs, shape = case
    kwargs = {**kwargs, "bias": False, "output_padding": 0}
    up = L.ConvTranspose2d(**kwargs, seed=seed).astype(np.float64)
    down = L.Conv2d(kwargs["out_channels"], kwargs["in_channels"], kwargs["kernel_size"], kwargs["stride"],
                    kwargs["padding"], kwargs["dilation"], kwargs["groups"], bias=False).astype(np.float64)
    down.weight.data = up.weight.data
    x = uniform(shape, seed)
    y = up(x)
    z = uniform(y.shape, seed + 1)
    np.testing.assert_allclose((y * z).sum(), (x * down(z)).sum(), rtol=1e-10, atol=1e-12)


def test_conv_transpose_output_size_and_errors():
    layer = L.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1)
    assert layer.output_shape((3, 7, 5)) == (2, 14, 10)
    assert layer.weight.shape == (3, 2, 3, 3)
    with pytest.raises(ValueError, match="ConvTranspose2d: output_padding .* smaller than the stride"):
        L.ConvTranspose2d(1, 1, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="ConvTranspose2d: input 1x1 gives an empty"):
        L.ConvTranspose2d(1, 1, 1, padding=1)(np.zeros((1, 1, 1, 1), np.float32))


@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose_gradcheck(bias):
    dn.gradcheck(L.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, groups=2, bias=bias, seed=3),
                 uniform((2, 4, 3, 2), 4))


@pytest.mark.parametrize("dev", ["ref", "cpu", "emu"])
@settings(max_examples=10)
@given(transposed(), st.integers(0, 2**16))
def test_conv_transpose_matches_pytorch(dev, case, seed):
    torch = pytest.importorskip("torch")
    kwargs, shape = case
    layer = L.ConvTranspose2d(**kwargs, seed=seed).astype(np.float64)
    module = torch.nn.ConvTranspose2d(**kwargs).double()
    copy_parameters(layer, module)
    x = uniform(shape, seed)
    dy = uniform((shape[0], *layer.output_shape(shape[1:])), seed + 1)
    assert_same(dualnet_run(dev, layer, x, dy), torch_run(module, x, dy))
