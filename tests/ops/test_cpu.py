"""CpuOps (device "cpu") computes what the reference ops compute, on Hypothesis-drawn geometries.

CpuOps reorders work (batch-last buffers, the bias folded into the product, pooling before ReLU),
so float64 results agree to rounding (1e-12 relative), float32 within 1e-5; where inputs hold
small integers every sum is exact and the two must agree bit for bit, ties in max pooling included.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dualnet.ops.cpu import CpuOps
from dualnet.ops.cpu_inference import inference_chunk
from dualnet.ops.geometry import ConvGeometry, PoolGeometry, out_size
from dualnet.ops.reference import ReferenceOps
from dualnet.testing import conv_geometries, param_grads, pool_geometries, tiling_pool_geometries, uniform

REF = ReferenceOps()
CPU = CpuOps()
DTYPES = st.sampled_from([np.float64, np.float32])


def tol(dtype):
    return dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)


def batch_last_view(x):
    """The same values as x, laid out the way CpuOps hands activations on: batch innermost."""
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


@given(g=conv_geometries(), dtype=DTYPES, bias=st.booleans(), act=st.sampled_from([None, "relu"]),
       need_dx=st.booleans(), strided=st.booleans(), seed=st.integers(0, 2**16))
def test_cpu_conv2d_forward_and_backward_agree_with_numpy(g, dtype, bias, act, need_dx, strided, seed):
    x = uniform((g["n"], g["c"], g["h"], g["w"]), seed, dtype)
    w = uniform((g["out_channels"], g["c"] // g["groups"], *g["kernel_size"]), seed + 1, dtype)
    b = uniform((g["out_channels"],), seed + 2, dtype) if bias else None
    dy = uniform((g["n"], g["out_channels"], g["out_h"], g["out_w"]), seed + 3, dtype)
    geom = g["geom"]
    y_ref, cols_ref = REF.conv2d_forward(x, w, b, geom, g["groups"], act)
    y, cols = CPU.conv2d_forward(batch_last_view(x) if strided else x, w, b, geom, g["groups"], act)
    np.testing.assert_allclose(y, y_ref, **tol(dtype))
    assert y.dtype == dtype
    nb = g["out_channels"] if bias else None
    ref = param_grads(REF.conv2d_backward, dy, cols_ref, w, x.shape, geom, g["groups"], weight_shape=w.shape,
                      bias=nb, dtype=dtype, need_dx=need_dx)
    got = param_grads(CPU.conv2d_backward, batch_last_view(dy) if strided else dy, cols, w, x.shape, geom,
                      g["groups"], weight_shape=w.shape, bias=nb, dtype=dtype, need_dx=need_dx)
    for name, a, r in zip(("dx", "dweight", "dbias"), got, ref):
        assert (a is None) == (r is None), name
        if r is not None:
            np.testing.assert_allclose(a, r, err_msg=name, **tol(dtype))
            assert a.shape == r.shape and a.dtype == dtype, name


@given(g=pool_geometries(), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_cpu_maxpool_agrees_with_numpy_on_any_geometry(g, dtype, seed):
    geom = g["geom"]
    x = uniform((g["n"], g["c"], g["h"], g["w"]), seed, dtype)
    dy = uniform((g["n"], g["c"], g["out_h"], g["out_w"]), seed + 1, dtype)
    y_ref, arg_ref = REF.maxpool_forward(x, geom)
    y, arg = CPU.maxpool_forward(x, geom)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(CPU.maxpool_backward(dy, arg, x.shape, geom),
                                  REF.maxpool_backward(dy, arg_ref, x.shape, geom))


@given(geom=tiling_pool_geometries(), n=st.integers(1, 3), c=st.integers(1, 4), levels=st.integers(1, 3),
       strided=st.booleans(), seed=st.integers(0, 2**16))
def test_cpu_maxpool_sends_each_tied_window_gradient_to_the_reference_input(geom, n, c, levels, strided, seed):
    """Few distinct values: most windows tie. The gradient must go to the same single input as
    the reference's (the first maximum), and be bitwise equal."""
    kh, kw, oh, ow = geom.kh, geom.kw, geom.out_h, geom.out_w
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels, size=(n, c, oh * kh, ow * kw)).astype(np.float32)
    dy = rng.integers(1, 5, size=(n, c, oh, ow)).astype(np.float32)
    y_ref, arg_ref = REF.maxpool_forward(x, geom)
    y, arg = CPU.maxpool_forward(batch_last_view(x) if strided else x, geom)
    np.testing.assert_array_equal(y, y_ref)
    dx = CPU.maxpool_backward(batch_last_view(dy) if strided else dy, arg, x.shape, geom)
    np.testing.assert_array_equal(dx, REF.maxpool_backward(dy, arg_ref, x.shape, geom))
    assert np.count_nonzero(dx) == np.count_nonzero(dy)  # one input per window, never two


@st.composite
def conv_then_tiling_pool(draw):
    """A conv geometry (no groups) and a pooling whose windows tile the conv's output."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pkh, pkw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    oh2, ow2 = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    # the smallest input giving exactly pkh*oh2 conv rows, plus up to sh-1 rows the stride skips
    h = max(1, sh * (pkh * oh2 - 1) + dh * (kh - 1) + 1 - 2 * ph) + draw(st.integers(0, sh - 1))
    w = max(1, sw * (pkw * ow2 - 1) + dw * (kw - 1) + 1 - 2 * pw) + draw(st.integers(0, sw - 1))
    out_h, out_w = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
    pool = PoolGeometry(pkh, pkw, pkh, pkw, 0, 0, 1, 1, out_h // pkh, out_w // pkw)
    return dict(n=draw(st.integers(1, 3)), c=draw(st.integers(1, 3)), o=draw(st.integers(1, 4)), h=h, w=w,
                conv=ConvGeometry(kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w), pool=pool)


@given(g=conv_then_tiling_pool(), bias=st.booleans(), need_dx=st.booleans(), strided=st.booleans(),
       seed=st.integers(0, 2**16))
def test_fused_conv_relu_maxpool_equals_conv_then_relu_then_maxpool_bit_for_bit(g, bias, need_dx, strided, seed):
    """Small integers make every sum exact, so reordering may not change a single bit; they also
    make ties and exact zeros common, the cases where pooling before ReLU could route wrongly."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=(g["n"], g["c"], g["h"], g["w"])).astype(np.float64)
    w = rng.integers(-2, 3, size=(g["o"], g["c"], g["conv"].kh, g["conv"].kw)).astype(np.float64)
    b = rng.integers(-2, 3, size=g["o"]).astype(np.float64) if bias else None
    conv, pool = g["conv"], g["pool"]
    if not pool.tiles(conv.out_h, conv.out_w):
        pytest.skip("the drawn pooling leaves conv output rows over")  # not reached by the strategy
    z, cols = REF.conv2d_forward(x, w, b, conv, 1, "relu")
    y_ref, arg = REF.maxpool_forward(z, pool)
    y, cache = CPU.conv_relu_maxpool_forward(batch_last_view(x) if strided else x, w, b, conv, pool)
    np.testing.assert_array_equal(y, y_ref)
    dy = rng.integers(-3, 4, size=y_ref.shape).astype(np.float64)
    dz = REF.relu_backward(REF.maxpool_backward(dy, arg, z.shape, pool), z)
    nb = g["o"] if bias else None
    ref = param_grads(REF.conv2d_backward, dz, cols, w, x.shape, conv, 1, weight_shape=w.shape, bias=nb,
                      dtype=np.float64, need_dx=need_dx)
    got = param_grads(CPU.conv_relu_maxpool_backward, batch_last_view(dy) if strided else dy, cache, w,
                      weight_shape=w.shape, bias=nb, dtype=np.float64, need_dx=need_dx)
    for name, a, r in zip(("dx", "dweight", "dbias"), got, ref):
        assert (a is None) == (r is None), name
        if r is not None:
            np.testing.assert_array_equal(a, r, err_msg=name)


@pytest.mark.parametrize("groups, pool", [(1, PoolGeometry(2, 2, 2, 2, 0, 0, 1, 1, 3, 3)),
                                           (2, PoolGeometry(7, 7, 7, 7, 0, 0, 1, 1, 1, 1))])
def test_fused_conv_relu_maxpool_outside_the_fast_path_is_the_reference_composition(groups, pool):
    """Pooling that does not tile the conv output (7x7 by 2x2 windows) or grouped convolution:
    the fused op falls back to the reference's composition, the same values as the three ops."""
    x = uniform((2, 2, 9, 9), 0)
    w = uniform((2, 2 // groups, 3, 3), 1)
    b = uniform((2,), 2)
    conv = ConvGeometry(3, 3, 1, 1, 0, 0, 1, 1, 7, 7)
    y, saved = CPU.conv_relu_maxpool_forward(x, w, b, conv, pool, groups)
    y_ref, saved_ref = REF.conv_relu_maxpool_forward(x, w, b, conv, pool, groups)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    dy = uniform(y.shape, 3)
    for a, r in zip(param_grads(CPU.conv_relu_maxpool_backward, dy, saved, w, weight_shape=w.shape, bias=2,
                                dtype=np.float64),
                    param_grads(REF.conv_relu_maxpool_backward, dy, saved_ref, w, weight_shape=w.shape, bias=2,
                                dtype=np.float64)):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12)


@given(dtype=DTYPES, n=st.integers(1, 5), i=st.integers(1, 12), o=st.integers(1, 12), bias=st.booleans(),
       act=st.sampled_from([None, "relu"]), seed=st.integers(0, 2**16))
def test_cpu_linear_forward_agrees_with_numpy(dtype, n, i, o, bias, act, seed):
    x, w = uniform((n, i), seed, dtype), uniform((o, i), seed + 1, dtype)
    b = uniform((o,), seed + 2, dtype) if bias else None
    np.testing.assert_allclose(CPU.linear_forward(x, w, b, act), REF.linear_forward(x, w, b, act), **tol(dtype))


@given(dtype=DTYPES, momentum=st.sampled_from([0.0, 0.9]), nesterov=st.booleans(),
       weight_decay=st.sampled_from([0.0, 1e-3]), seed=st.integers(0, 2**16))
def test_cpu_sgd_update_agrees_with_numpy(dtype, momentum, nesterov, weight_decay, seed):
    p0, g, v0 = uniform((7, 5), seed, dtype), uniform((7, 5), seed + 1, dtype), uniform((7, 5), seed + 2, dtype)
    p_ref, v_ref, p, v = p0.copy(), v0.copy(), p0.copy(), v0.copy()
    REF.sgd_update(p_ref, g, v_ref, 0.05, momentum, weight_decay, nesterov)
    CPU.sgd_update(p, g, v, 0.05, momentum, weight_decay, nesterov)
    np.testing.assert_allclose(p, p_ref, **tol(dtype))
    np.testing.assert_allclose(v, v_ref, **tol(dtype))


@given(dtype=DTYPES, n=st.integers(1, 6), k=st.integers(1, 12), scale=st.sampled_from([1.0, 50.0, 1e4]),
       seed=st.integers(0, 2**16))
def test_cpu_softmax_cross_entropy_agrees_with_numpy_even_for_huge_logits(dtype, n, k, scale, seed):
    logits = uniform((n, k), seed, dtype) * dtype(scale)
    labels = np.random.default_rng(seed).integers(0, k, size=n).astype(np.int32)
    loss, probs = CPU.softmax_xent_forward(logits, labels)
    loss_ref, probs_ref = REF.softmax_xent_forward(logits, labels)
    assert np.isfinite(loss).all()
    np.testing.assert_allclose(loss, loss_ref, rtol=tol(dtype)["rtol"], atol=tol(dtype)["atol"] * scale)
    np.testing.assert_allclose(probs, probs_ref, **tol(dtype))


@given(g=conv_then_tiling_pool(), bias=st.booleans(), strided=st.booleans(), seed=st.integers(0, 2**16))
def test_cpu_conv_relu_maxpool_inference_equals_the_training_forward_bit_for_bit(g, bias, strided, seed):
    """Eval mode skips the masks, not a value: the same y as the forward that keeps them, ties included."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=(g["n"], g["c"], g["h"], g["w"])).astype(np.float64)
    w = rng.integers(-2, 3, size=(g["o"], g["c"], g["conv"].kh, g["conv"].kw)).astype(np.float64)
    b = rng.integers(-2, 3, size=g["o"]).astype(np.float64) if bias else None
    xin = batch_last_view(x) if strided else x
    y_train, _ = CPU.conv_relu_maxpool_forward(xin, w, b, g["conv"], g["pool"])
    y = CPU.conv_relu_maxpool_inference(xin, w, b, g["conv"], g["pool"])
    assert y.shape == y_train.shape
    np.testing.assert_array_equal(y, y_train)
    np.testing.assert_array_equal(y, REF.conv_relu_maxpool_inference(x, w, b, g["conv"], g["pool"]))


@given(n=st.integers(1, 700), side=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_cpu_inference_in_chunks_equals_one_run_and_keeps_every_chunk_within_the_chunk_size(n, side, seed):
    x = uniform((n, 1, side, side), seed)
    sizes = []

    def run(part):
        sizes.append(len(part))
        return part.reshape(len(part), -1).sum(axis=1, keepdims=True) * 2.0

    out = CPU.inference_in_chunks(run, x)
    np.testing.assert_array_equal(out, run(x))
    chunk = inference_chunk(x)
    assert sum(sizes[:-1]) == n and max(sizes[:-1]) <= chunk
    assert len(sizes) - 1 == -(-n // chunk)  # as few chunks as the size allows
