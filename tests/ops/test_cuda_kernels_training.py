"""The fused and training-loop kernels' ops (ops/cuda.py) agree with the reference ops: fused conv
+ ReLU + max pooling, gradient accumulation, linear + ReLU backward, the batch gather, the step's
statistics and the optimizers' updates; on "emu" everywhere, on "gpu" where CuPy sees a device
(tolerances: cuda_agreement.py).
"""

from __future__ import annotations

import numpy as np
from cuda_agreement import DEVICES, DTYPES, REF, agree, kernel_ops
from hypothesis import given
from hypothesis import strategies as st

from dualnet.ops.geometry import PoolGeometry
from dualnet.testing import conv_geometries, param_grads, tie_free, uniform

# --- fused conv + ReLU + max pooling, gradient accumulation, the training loop's kernels ---------


@st.composite
def conv_pool_geometries(draw):
    """A groups=1 convolution geometry and a pooling geometry valid on its output."""
    g = draw(conv_geometries(max_size=12))
    oh, ow = g["out_h"], g["out_w"]
    kh, kw = draw(st.integers(1, min(3, oh))), draw(st.integers(1, min(3, ow)))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    return g, PoolGeometry.of(oh, ow, (kh, kw), (sh, sw), (ph, pw))


@DEVICES
@given(conv_pool_geometries(), st.booleans(), st.booleans(), st.integers(0, 2**16))
def test_fused_conv_relu_maxpool_kernel_agrees_with_the_composition(device, gp, bias, need_dx, seed):
    """float64: the direct convolution and the product differ in rounding only, never in the
    chosen maximum (drawn inputs have no near-ties at that scale)."""
    g, pool = gp
    dtype = np.float64
    x = uniform((g["n"], g["c"], g["h"], g["w"]), seed, dtype)
    w = uniform((g["out_channels"], g["c"] // g["groups"], *g["kernel_size"]), seed + 1, dtype)
    b = uniform((g["out_channels"],), seed + 2, dtype) if bias else None
    ops = kernel_ops(device)
    y_ref, saved_ref = REF.conv_relu_maxpool_forward(x, w, b, g["geom"], pool, g["groups"])
    y, saved = ops.conv_relu_maxpool_forward(x, w, b, g["geom"], pool, g["groups"])
    agree(y_ref, y, dtype)
    dy = uniform(y_ref.shape, seed + 3, dtype)
    nb = g["out_channels"] if bias else None
    ref = param_grads(REF.conv_relu_maxpool_backward, dy, saved_ref, w, weight_shape=w.shape, bias=nb, dtype=dtype,
                      need_dx=need_dx)
    got = param_grads(ops.conv_relu_maxpool_backward, dy, saved, w, weight_shape=w.shape, bias=nb, dtype=dtype,
                      need_dx=need_dx)
    for r, k in zip(ref, got):
        assert (r is None) == (k is None)
        if r is not None:
            agree(r, k, dtype)


@DEVICES
@given(conv_pool_geometries(), st.integers(0, 2**16))
def test_fused_conv_relu_maxpool_forward_agrees_in_float32(device, gp, seed):
    g, pool = gp
    x = uniform((g["n"], g["c"], g["h"], g["w"]), seed, np.float32)
    w = uniform((g["out_channels"], g["c"] // g["groups"], *g["kernel_size"]), seed + 1, np.float32)
    b = uniform((g["out_channels"],), seed + 2, np.float32)
    y_ref, _ = REF.conv_relu_maxpool_forward(x, w, b, g["geom"], pool, g["groups"])
    agree(y_ref, kernel_ops(device).conv_relu_maxpool_forward(x, w, b, g["geom"], pool, g["groups"])[0], np.float32)


@DEVICES
@given(st.integers(1, 5), st.integers(1, 9), st.integers(1, 9), DTYPES, st.booleans(), st.booleans(),
       st.integers(0, 2**16))
def test_gradient_accumulation_kernels_agree(device, n, k, o, dtype, bias, need_dx, seed):
    x, dy = uniform((n, k), seed, dtype), uniform((n, o), seed + 1, dtype)
    weight = uniform((o, k), seed + 2, dtype)
    grads = [uniform((o, k), seed + 3, dtype), uniform((o,), seed + 4, dtype)]
    ref = [a.copy() for a in grads]
    got = [a.copy() for a in grads]
    dx_ref = REF.linear_backward(dy, x, weight, ref[0], ref[1] if bias else None, need_dx)
    dx = kernel_ops(device).linear_backward(dy, x, weight, got[0], got[1] if bias else None, need_dx)
    assert (dx is None) == (dx_ref is None)
    agree(tuple(ref) + ((dx_ref,) if need_dx else ()), tuple(got) + ((dx,) if need_dx else ()), dtype)
    dw, db = uniform((o, k), seed + 5, dtype), uniform((o,), seed + 6, dtype)
    REF.accumulate_grads(ref[0], dw, ref[1] if bias else None, db)
    kernel_ops(device).accumulate_grads(got[0], dw, got[1] if bias else None, db)
    agree(tuple(ref), tuple(got), dtype)


@DEVICES
@given(st.integers(1, 40), st.integers(1, 9), st.integers(1, 9), DTYPES, st.booleans(), st.booleans(),
       st.integers(0, 2**16))
def test_linear_relu_backward_agrees(device, n, k, o, dtype, bias, need_dx, seed):
    """The ReLU's mask and the bias gradient in one kernel (relu_bias_grad), then the products."""
    x, dy = uniform((n, k), seed, dtype), uniform((n, o), seed + 1, dtype)
    y = np.maximum(uniform((n, o), seed + 2, dtype), 0)  # a ReLU's output: zeros mask the gradient
    weight = uniform((o, k), seed + 3, dtype)
    grads = {"weight_shape": (o, k), "bias": o if bias else None, "dtype": dtype, "need_dx": need_dx}
    ref = param_grads(REF.linear_relu_backward, dy, y, x, weight, **grads)
    got = param_grads(kernel_ops(device).linear_relu_backward, dy, y, x, weight, **grads)
    assert (got[0] is None) == (ref[0] is None) == (not need_dx)
    agree(tuple(r for r in ref if r is not None), tuple(g for g in got if g is not None), dtype, reduction=n)


@DEVICES
@given(st.integers(1, 30), st.integers(1, 12), DTYPES, st.data())
def test_gather_batch_agrees(device, count, per, dtype, data):
    images = uniform((count, 1, per, 1), 0, dtype)
    labels = np.random.default_rng(count).integers(0, 10, count).astype(np.int32)
    order = np.random.default_rng(per).permutation(count).astype(np.int32)
    start = data.draw(st.integers(0, count - 1))
    stop = data.draw(st.integers(start + 1, count))
    agree(REF.gather_batch(images, labels, order, start, stop),
          kernel_ops(device).gather_batch(images, labels, order, start, stop), dtype)


@DEVICES
@given(st.integers(1, 6), st.integers(2, 7), st.integers(1, 40), st.integers(1, 9), DTYPES, st.data())
def test_step_stats_agrees_and_flags_the_first_non_finite_step_of_each_chunk(device, n, k, size, chunk, dtype,
                                                                             data):
    cap = 3
    nchunks = -(-size // chunk)
    rng = np.random.default_rng(size * 31 + n)
    logits = tie_free((n, k), n, dtype)
    labels = rng.integers(0, k, n).astype(np.int32)
    grad = uniform((size,), size, dtype)
    for i in data.draw(st.lists(st.integers(0, size - 1), max_size=3)):
        grad[i] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    tally = np.zeros(2 * cap + nchunks, dtype)
    tally[2 * cap:] = rng.integers(0, 2, nchunks) * 3  # some chunks already flagged at step 3
    loss = np.asarray(uniform((1,), n, dtype)[0] + 2)
    slot, step = data.draw(st.integers(0, cap - 1)), data.draw(st.integers(4, 100))
    ref, got = tally.copy(), tally.copy()
    REF.step_stats(ref, loss, logits, labels, grad, chunk, cap, slot, step)
    kernel_ops(device).step_stats(got, loss, logits, labels, grad, chunk, cap, slot, step)
    np.testing.assert_array_equal(got, ref)


@DEVICES
@given(st.integers(1, 200), DTYPES, st.sampled_from([0.0, 1e-2]), st.integers(0, 2**16))
def test_adamw_update_agrees(device, size, dtype, wd, seed):
    state = [uniform((size,), seed + i, dtype) for i in range(3)] + [np.abs(uniform((size,), seed + 3, dtype))]
    a = [s.copy() for s in state]
    b = [s.copy() for s in state]
    decay = 1.0 - 1e-3 * wd
    REF.adamw_update(a[0], a[1], a[2], a[3], 1e-3, 0.9, 0.999, 1e-8, decay, 0.1, 0.001)
    kernel_ops(device).adamw_update(b[0], b[1], b[2], b[3], 1e-3, 0.9, 0.999, 1e-8, decay, 0.1, 0.001)
    agree((a[0], a[2], a[3]), (b[0], b[2], b[3]), dtype)


@DEVICES
@given(conv_pool_geometries(), st.integers(0, 2**16))
def test_fused_conv_relu_maxpool_sends_a_tie_to_the_first_maximum(device, gp, seed):
    """A blank input and a positive bias: every conv output of a window ties (as MNIST's blank
    borders do); the gradient must reach the first one only, as the composition's does."""
    g, pool = gp
    x = np.zeros((g["n"], g["c"], g["h"], g["w"]))
    w = uniform((g["out_channels"], g["c"] // g["groups"], *g["kernel_size"]), seed)
    b = np.abs(uniform((g["out_channels"],), seed + 1)) + 0.5
    ops = kernel_ops(device)
    y_ref, saved_ref = REF.conv_relu_maxpool_forward(x, w, b, g["geom"], pool, g["groups"])
    y, saved = ops.conv_relu_maxpool_forward(x, w, b, g["geom"], pool, g["groups"])
    dy = uniform(y_ref.shape, seed + 2)
    grads = {"weight_shape": w.shape, "bias": g["out_channels"], "dtype": np.float64}
    agree(param_grads(REF.conv_relu_maxpool_backward, dy, saved_ref, w, **grads),
          param_grads(ops.conv_relu_maxpool_backward, dy, saved, w, **grads),
          np.float64)
