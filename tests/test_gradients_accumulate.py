"""Parameter gradients accumulate over backward calls until zero_grad()."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import dualnet as dn
from dualnet.testing import uniform


@given(st.sampled_from(["lenet5", "mlp", "lenet5-separable", "theano-lenet"]), st.integers(0, 100))
def test_parameter_gradients_accumulate_until_zero_grad(name, seed):
    model = dn.models.get(name, seed=seed, dtype=np.float64)
    x = uniform((2, 1, 28, 28), seed, low=0, high=1)
    dy = uniform((2, 10), seed + 1)
    model(x)
    model.backward(dy)
    once = [p.grad.copy() for p in model.parameters()]
    model(x)
    model.backward(dy)
    for g1, p in zip(once, model.parameters()):
        np.testing.assert_allclose(p.grad, 2 * g1, rtol=1e-12, atol=1e-14)
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


def test_fused_conv_relu_equals_separate_layers():
    fused = dn.models.lenet5(seed=3, dtype=np.float64)
    plain = dn.models.lenet5(seed=3, dtype=np.float64)
    plain.fuse = False
    x = uniform((3, 1, 28, 28), 0, low=0, high=1)
    np.testing.assert_array_equal(fused(x), plain(x))
    dy = uniform((3, 10), 1)
    np.testing.assert_array_equal(fused.backward(dy), plain.backward(dy))
