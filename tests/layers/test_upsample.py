"""Upsample: nearest and bilinear (align_corners), by size or scale factor; PyTorch's values and gradients."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_reference import assert_same, dualnet_run, torch_run

import dualnet as dn
from dualnet import layers as L
from dualnet.testing import uniform


@st.composite
def upsamples(draw):
    """(Upsample kwargs, input shape)."""
    mode = draw(st.sampled_from(["nearest", "bilinear"]))
    kwargs: dict = {"mode": mode}
    if mode == "bilinear":
        kwargs["align_corners"] = draw(st.booleans())
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    if draw(st.booleans()):
        kwargs["size"] = (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    else:
        scale = draw(st.sampled_from([1.0, 1.5, 2.0, 3.0, 0.5, 2.5]))
        if int(h * scale) < 1 or int(w * scale) < 1:
            scale = 2.0
        kwargs["scale_factor"] = scale
    return kwargs, (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)


def test_nearest_upsampling_by_an_integer_factor_repeats_each_pixel():
    x = uniform((1, 2, 3, 4), 0)
    np.testing.assert_array_equal(L.Upsample(scale_factor=2)(x), x.repeat(2, axis=2).repeat(2, axis=3))


def test_bilinear_with_align_corners_keeps_the_corners():
    x = uniform((1, 1, 3, 4), 1)
    y = L.Upsample(size=(7, 9), mode="bilinear", align_corners=True)(x)
    np.testing.assert_allclose(y[..., ::3, ::-8][..., :, :], x[..., :, ::-3][..., :, :2], rtol=1e-12)


@given(upsamples(), st.integers(0, 2**16))
def test_upsample_backward_is_the_adjoint_of_forward(case, seed):
    kwargs, shape = case
    layer = L.Upsample(**kwargs)
    x = uniform(shape, seed)
    y = layer(x)
    dy = uniform(y.shape, seed + 1)
    np.testing.assert_allclose((y * dy).sum(), (x * layer.backward(dy)).sum(), rtol=1e-10, atol=1e-12)


def test_upsample_gradcheck_and_errors():
    dn.gradcheck(L.Upsample(scale_factor=(1.5, 2), mode="bilinear"), uniform((1, 2, 3, 3), 2))
    with pytest.raises(ValueError, match="Upsample: give exactly one of size and scale_factor"):
        L.Upsample()
    with pytest.raises(ValueError, match="Upsample: align_corners can only be set with mode='bilinear'"):
        L.Upsample(scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match="Upsample: mode must be one of"):
        L.Upsample(scale_factor=2, mode="bicubic")


@pytest.mark.parametrize("dev", ["ref", "cpu", "emu"])
@settings(max_examples=12)
@given(upsamples(), st.integers(0, 2**16))
def test_upsample_matches_pytorch(dev, case, seed):
    torch = pytest.importorskip("torch")
    kwargs, shape = case
    module = torch.nn.Upsample(**kwargs)
    x = uniform(shape, seed)
    dy = uniform(tuple(module(torch.from_numpy(x)).shape), seed + 1)
    assert_same(dualnet_run(dev, L.Upsample(**kwargs), x, dy), torch_run(module, x, dy))
