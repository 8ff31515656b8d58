"""Every layer and the loss: analytic gradients match float64 central differences (rel 1e-6)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import dualnet as dn
from dualnet import layers as L
from dualnet.testing import conv_geometries, conv_layer_kwargs, linear_geometries, pool_geometries, tie_free, uniform

RTOL = 1e-6


@given(conv_geometries(), st.booleans(), st.integers(0, 2**16))
def test_conv2d_gradient_matches_numerical(g, bias, seed):
    layer = L.Conv2d(**conv_layer_kwargs(g), bias=bias, seed=seed)
    x = uniform((g["n"], g["c"], g["h"], g["w"]), seed)
    dn.gradcheck(layer, x, rtol=RTOL)


@given(pool_geometries(), st.integers(0, 2**16))
def test_maxpool2d_gradient_matches_numerical(g, seed):
    layer = L.MaxPool2d(g["kernel_size"], g["stride"], g["padding"])
    x = tie_free((g["n"], g["c"], g["h"], g["w"]), seed)
    dn.gradcheck(layer, x, rtol=RTOL)


@given(pool_geometries(), st.integers(0, 2**16))
def test_avgpool2d_gradient_matches_numerical(g, seed):
    layer = L.AvgPool2d(g["kernel_size"], g["stride"], g["padding"])
    dn.gradcheck(layer, uniform((g["n"], g["c"], g["h"], g["w"]), seed), rtol=RTOL)


@given(linear_geometries(), st.booleans(), st.integers(0, 2**16))
def test_linear_gradient_matches_numerical(g, bias, seed):
    layer = L.Linear(g["in_features"], g["out_features"], bias=bias, seed=seed)
    dn.gradcheck(layer, uniform((g["n"], g["in_features"]), seed), rtol=RTOL)


@given(st.sampled_from([L.ReLU, L.Tanh, L.Sigmoid]),
       st.lists(st.integers(1, 6), min_size=1, max_size=4), st.integers(0, 2**16))
def test_activation_gradient_matches_numerical(cls, shape, seed):
    # values kept away from relu's kink at 0 by more than the finite-difference step
    x = uniform(shape, seed, low=0.01, high=2.0) * np.random.default_rng(seed).choice([-1, 1], size=shape)
    dn.gradcheck(cls(), x, rtol=RTOL)


@given(st.lists(st.integers(1, 5), min_size=2, max_size=4), st.integers(0, 2**16))
def test_flatten_gradient_matches_numerical(shape, seed):
    dn.gradcheck(L.Flatten(), uniform(shape, seed), rtol=RTOL)


@given(st.floats(0.0, 0.9), st.integers(1, 40), st.integers(0, 2**16))
def test_dropout_gradient_matches_numerical(p, size, seed):
    dn.gradcheck(L.Dropout(p, seed=seed), uniform((2, size), seed), rtol=RTOL)


@given(st.integers(1, 6), st.integers(2, 12), st.floats(0.1, 30.0), st.integers(0, 2**16))
def test_softmax_cross_entropy_gradient_matches_numerical(n, k, scale, seed):
    logits = uniform((n, k), seed) * scale
    labels = np.random.default_rng(seed).integers(0, k, size=n)
    dn.gradcheck(dn.losses.SoftmaxCrossEntropy(), logits, labels=labels, rtol=RTOL)


@given(st.integers(0, 2**16))
def test_whole_model_gradient_matches_numerical(seed):
    # the smooth LeNet (tanh, average pooling): a whole ReLU/max-pool network has kinks that a
    # finite difference over thousands of units crosses now and then
    model = dn.models.lenet5_classic(seed=seed)
    x = uniform((2, 1, 28, 28), seed, low=0.0, high=1.0)
    report = dn.gradcheck(model, x, rtol=1e-5)
    assert {r.method for r in report.results} == {"full", "directions"}
