"""Pooling: max pool is the window maximum (ties go to one input), avg pool of a constant."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dualnet as dn
from dualnet import layers as L
from dualnet.testing import assert_devices_agree, pool_geometries, tie_free, uniform


def window_reduce(x, g, reduce, fill):
    (kh, kw), (sh, sw), (ph, pw) = g["kernel_size"], g["stride"], g["padding"]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    out = np.empty((x.shape[0], x.shape[1], g["out_h"], g["out_w"]))
    for i in range(g["out_h"]):
        for j in range(g["out_w"]):
            out[:, :, i, j] = reduce(xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw], axis=(2, 3))
    return out


@given(pool_geometries(), st.integers(0, 2**16))
def test_maxpool2d_equals_window_maximum(g, seed):
    x = tie_free((g["n"], g["c"], g["h"], g["w"]), seed)
    y = L.MaxPool2d(g["kernel_size"], g["stride"], g["padding"])(x)
    np.testing.assert_array_equal(y, window_reduce(x, g, np.max, -np.inf))


@given(pool_geometries(), st.integers(0, 2**16))
def test_avgpool2d_equals_window_mean_with_zero_padding(g, seed):
    x = uniform((g["n"], g["c"], g["h"], g["w"]), seed)
    y = L.AvgPool2d(g["kernel_size"], g["stride"], g["padding"])(x)
    np.testing.assert_allclose(y, window_reduce(x, g, np.mean, 0.0), rtol=1e-12, atol=1e-15)


@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.floats(-5, 5), st.integers(1, 12))
def test_avgpool2d_of_constant_image_is_that_constant(k, s, c, value, extra):
    x = np.full((2, c, k + extra, k + extra), value)
    y = L.AvgPool2d(k, s)(x)
    np.testing.assert_allclose(y, value, rtol=1e-12, atol=1e-12)


@given(pool_geometries(), st.integers(0, 2**16))
def test_maxpool2d_ties_send_each_window_gradient_to_exactly_one_input(g, seed):
    # exact ties everywhere, as on MNIST's blank borders
    x = np.zeros((g["n"], g["c"], g["h"], g["w"]))
    layer = L.MaxPool2d(g["kernel_size"], g["stride"], g["padding"])
    y = layer(x)
    dy = np.ones_like(y)
    dx = layer.backward(dy)
    assert dx.sum() == dy.sum()  # no gradient duplicated or lost
    assert set(np.unique(dx)) <= set(range(0, g["kernel_size"][0] * g["kernel_size"][1] + 1))


def test_maxpool2d_tie_goes_to_first_element_in_window():
    x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]])
    layer = L.MaxPool2d(2)
    layer(x)
    dx = layer.backward(np.array([[[[5.0]]]]))
    np.testing.assert_array_equal(dx, [[[[0.0, 5.0], [0.0, 0.0]]]])


# --- GlobalAvgPool2d -------------------------------------------------------------------------------


@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**16))
def test_global_avgpool2d_is_the_plane_mean_and_its_gradient_matches_numerical(n, c, h, w, seed):
    x = uniform((n, c, h, w), seed)
    layer = L.GlobalAvgPool2d()
    np.testing.assert_allclose(layer(x), x.mean(axis=(2, 3)), rtol=1e-12)
    assert layer.output_shape((c, h, w)) == (c,)
    dn.gradcheck(layer, x, rtol=1e-6)


def test_global_avgpool2d_agrees_on_ref_cpu_and_emu():
    def step(x, dy):
        layer = L.GlobalAvgPool2d()
        return layer(x), layer.backward(dy)

    for dtype in (np.float64, np.float32):
        assert_devices_agree(step, uniform((3, 4, 5, 7), 0, dtype), uniform((3, 4), 1, dtype))


def test_global_avgpool2d_rejects_other_ranks():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        L.GlobalAvgPool2d()(np.zeros((2, 3, 4), np.float32))
