"""Invalid geometries and arguments raise ValueError naming the layer and the shapes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

import dualnet as dn
from dualnet import layers as L
from dualnet.testing import invalid_conv_geometries, invalid_pool_geometries


@given(invalid_conv_geometries())
def test_conv2d_invalid_geometry_raises_value_error_naming_layer(case):
    kwargs, shape, kind = case
    with pytest.raises(ValueError, match="Conv2d") as info:
        layer = L.Conv2d(**kwargs)
        layer(np.zeros(shape, np.float32))
    if kind in ("rank", "channels"):
        assert str(tuple(shape)) in str(info.value)
    if kind == "empty":
        assert "empty" in str(info.value) and f"{shape[2]}x{shape[3]}" in str(info.value)


@given(invalid_pool_geometries())
def test_pooling_invalid_geometry_raises_value_error_naming_layer(case):
    kwargs, shape, kind = case
    for cls in (L.MaxPool2d, L.AvgPool2d):
        with pytest.raises(ValueError, match=cls.__name__):
            cls(**kwargs)(np.zeros(shape, np.float32))


def test_linear_wrong_feature_count_names_both_shapes():
    with pytest.raises(ValueError, match=r"Linear.*expected 400 input features.*\(2, 300\)"):
        L.Linear(400, 10)(np.zeros((2, 300), np.float32))


def test_dtype_mismatch_is_reported():
    with pytest.raises(ValueError, match="float64 differs from parameter dtype float32"):
        L.Linear(3, 2)(np.zeros((1, 3)))


def test_integer_input_is_rejected():
    with pytest.raises(ValueError, match="floating-point"):
        L.Conv2d(1, 1, 3)(np.zeros((1, 1, 5, 5), np.int32))


@pytest.mark.parametrize("bad", [1.5, "3", (1, 2, 3), True, None])
def test_non_integer_sizes_are_rejected(bad):
    with pytest.raises(ValueError, match="Conv2d: kernel_size"):
        L.Conv2d(1, 1, bad)


@pytest.mark.parametrize("p", [-0.1, 1.0, 2])
def test_dropout_probability_out_of_range(p):
    with pytest.raises(ValueError, match="Dropout: p"):
        L.Dropout(p)


def test_backward_before_forward_is_explained():
    with pytest.raises(RuntimeError, match="Conv2d: backward"):
        L.Conv2d(1, 1, 3).backward(np.zeros((1, 1, 1, 1), np.float32))


def test_sequential_rejects_non_layers():
    with pytest.raises(ValueError, match="item 1"):
        dn.Sequential(L.ReLU(), "relu")
