"""Conv2d forward: equals the seeds' nested loops, is translation equivariant, is bilinear."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from dualnet import layers as L
from dualnet.testing import conv_geometries, conv_layer_kwargs, uniform


def loop_conv2d(x, w, b, stride, padding, dilation, groups):
    """The seeds' NumPy loops (batch, output pixel, output channel), generalised to padding,
    dilation and groups. Slow and obviously right."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for i in range(n):
        for j in range(oh):
            for k in range(ow):
                for oc in range(o):
                    g = oc // og
                    patch = xp[i, g * cg:(g + 1) * cg,
                               j * sh:j * sh + dh * (kh - 1) + 1:dh,
                               k * sw:k * sw + dw * (kw - 1) + 1:dw]
                    out[i, oc, j, k] = np.sum(patch * w[oc]) + (b[oc] if b is not None else 0.0)
    return out


def make(g, seed, bias=True):
    layer = L.Conv2d(**conv_layer_kwargs(g), bias=bias, seed=seed, dtype=np.float64)
    if bias:
        layer.bias.data[...] = uniform(layer.bias.shape, seed + 1)
    return layer


@given(conv_geometries(max_size=12), st.integers(0, 2**16))
def test_conv2d_forward_equals_nested_loop_reference(g, seed):
    layer = make(g, seed)
    x = uniform((g["n"], g["c"], g["h"], g["w"]), seed)
    expected = loop_conv2d(x, layer.weight.data, layer.bias.data, g["stride"], g["padding"],
                           g["dilation"], g["groups"])
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12, atol=1e-12)


@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5), st.integers(1, 2),
       st.integers(-3, 3), st.integers(-3, 3), st.integers(0, 2**16))
def test_conv2d_is_translation_equivariant(c, o, kh, kw, dil, dy, dx, seed):
    size = 16
    layer = L.Conv2d(c, o, (kh, kw), dilation=dil, bias=False, seed=seed, dtype=np.float64)
    x = uniform((1, c, size, size), seed)
    # zero the border so that the shift loses nothing
    m = 3
    x[:, :, :m], x[:, :, -m:], x[:, :, :, :m], x[:, :, :, -m:] = 0, 0, 0, 0
    shifted = np.zeros_like(x)
    shifted[:, :, max(dy, 0):size + min(dy, 0), max(dx, 0):size + min(dx, 0)] = \
        x[:, :, max(-dy, 0):size + min(-dy, 0), max(-dx, 0):size + min(-dx, 0)]
    y, ys = layer(x), layer(shifted)
    oh, ow = y.shape[2:]
    # compare where both the output and its shifted position lie inside the map
    ys_region = ys[:, :, max(dy, 0):oh + min(dy, 0), max(dx, 0):ow + min(dx, 0)]
    y_region = y[:, :, max(-dy, 0):oh + min(-dy, 0), max(-dx, 0):ow + min(-dx, 0)]
    np.testing.assert_allclose(ys_region, y_region, rtol=1e-12, atol=1e-12)


@given(conv_geometries(max_size=10), st.floats(-3, 3), st.floats(-3, 3), st.integers(0, 2**16))
def test_conv2d_is_linear_in_input_and_in_weight(g, a, b, seed):
    layer = make(g, seed, bias=False)
    shape = (g["n"], g["c"], g["h"], g["w"])
    x1, x2 = uniform(shape, seed), uniform(shape, seed + 7)
    np.testing.assert_allclose(layer(a * x1 + b * x2), a * layer(x1) + b * layer(x2), rtol=1e-9, atol=1e-9)
    w1 = layer.weight.data.copy()
    w2 = uniform(w1.shape, seed + 3)
    y1 = layer(x1)
    layer.weight.data = w2
    y2 = layer(x1)
    layer.weight.data = a * w1 + b * w2
    np.testing.assert_allclose(layer(x1), a * y1 + b * y2, rtol=1e-9, atol=1e-9)
