"""Softmax / LogSoftmax layers: distributions, stability, gradients, devices and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_reference import assert_same, dualnet_run, torch_run

import dualnet as dn
from dualnet import layers as L
from dualnet.testing import uniform

shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)


@given(shapes, st.data(), st.integers(0, 2**16))
def test_softmax_slices_along_dim_are_distributions_and_logsoftmax_is_their_log(shape, data, seed):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = uniform(shape, seed, low=-30, high=30)
    p = L.Softmax(dim)(x)
    np.testing.assert_allclose(p.sum(axis=dim), 1.0, rtol=1e-12)
    assert (p >= 0).all()
    np.testing.assert_allclose(L.LogSoftmax(dim)(x), np.log(p), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("cls", [L.Softmax, L.LogSoftmax])
def test_softmax_of_huge_logits_does_not_overflow(cls):
    x = np.array([[1e4, 0.0, -1e4], [1e30, 1e30, -1e30]])
    y = cls()(x)
    assert np.isfinite(y[:, :2]).all() and not np.isnan(y).any()


@pytest.mark.parametrize("cls", [L.Softmax, L.LogSoftmax])
@pytest.mark.parametrize("dim", [1, -1, 2])
def test_softmax_gradcheck(cls, dim):
    dn.gradcheck(cls(dim), uniform((2, 3, 4), 3, low=-2, high=2))


def test_softmax_dim_out_of_range_is_explained():
    with pytest.raises(ValueError, match="Softmax: dim=3 is out of range for a 2-D input"):
        L.Softmax(3)(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="dim must be an int"):
        L.Softmax(1.0)


@pytest.mark.parametrize("dev", ["ref", "cpu", "emu"])
@pytest.mark.parametrize("cls", ["Softmax", "LogSoftmax"])
@settings(max_examples=8)
@given(shapes, st.data(), st.integers(0, 2**16))
def test_softmax_matches_pytorch_forward_and_backward(dev, cls, shape, data, seed):
    torch = pytest.importorskip("torch")
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x, dy = uniform(shape, seed, low=-5, high=5), uniform(shape, seed + 1)
    got = dualnet_run(dev, getattr(L, cls)(dim), x, dy)
    assert_same(got, torch_run(getattr(torch.nn, cls)(dim), x, dy))
