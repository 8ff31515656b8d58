"""LeakyReLU: values, the gradient (from the input, for any slope sign), devices, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dualnet as dn
from dualnet import layers as L
from dualnet.testing import assert_devices_agree, uniform


@given(st.lists(st.integers(1, 6), min_size=1, max_size=4), st.floats(-2.0, 2.0), st.integers(0, 2**16))
def test_leaky_relu_gradient_matches_numerical_for_any_slope(shape, slope, seed):
    # values kept away from the kink at 0 by more than the finite-difference step
    x = uniform(shape, seed, low=0.01, high=2.0) * np.random.default_rng(seed).choice([-1, 1], size=shape)
    layer = L.LeakyReLU(slope)
    np.testing.assert_array_equal(layer(x), np.where(x > 0, x, slope * x))
    dn.gradcheck(layer, x, rtol=1e-6)


def test_leaky_relu_at_zero_takes_the_slope_like_pytorch():
    layer = L.LeakyReLU(0.25)
    x = np.array([-1.0, 0.0, 1.0])
    layer(x)
    np.testing.assert_array_equal(layer.backward(np.ones(3)), [0.25, 0.25, 1.0])


def test_leaky_relu_agrees_on_ref_cpu_and_emu():
    def step(x, dy):
        layer = L.LeakyReLU(-0.3)
        return layer(x), layer.backward(dy)

    for dtype in (np.float64, np.float32):
        assert_devices_agree(step, uniform((2, 3, 4, 5), 0, dtype), uniform((2, 3, 4, 5), 1, dtype))


@pytest.mark.parametrize("slope", ["0.1", float("nan"), True])
def test_leaky_relu_rejects_a_bad_slope(slope):
    with pytest.raises(ValueError, match="negative_slope"):
        L.LeakyReLU(slope)
