"""The kernel-backed ops (ops/cuda.py) agree with the reference ops: on "emu" everywhere, on "gpu" where
CuPy sees a device.

Every op, forward and backward, on Hypothesis-drawn geometries: float64 within 1e-12 relative
(1e-10 on a real GPU, whose compiler fuses multiply-adds), float32 within 1e-5. The emulator runs
in checking mode (NaN-filled outputs, guard zones) with tiny grids, so every grid-stride loop
wraps several times.
"""

from __future__ import annotations

import numpy as np
import pytest
from cuda_agreement import DEVICES, DTYPES, REF, HostView, agree, kernel_ops
from hypothesis import given
from hypothesis import strategies as st

from dualnet.ops.cuda import EmulatedOps
from dualnet.ops.geometry import ConvGeometry, PoolGeometry
from dualnet.testing import conv_geometries, param_grads, pool_geometries, tie_free, uniform


@DEVICES
@given(conv_geometries(), DTYPES, st.integers(0, 2**16))
def test_im2col_and_col2im_agree(device, g, dtype, seed):
    geom = g["geom"]
    x = uniform((g["n"], g["c"], g["h"], g["w"]), seed, dtype)
    cols = REF.im2col(x, geom)
    agree(REF.im2col(x, geom), kernel_ops(device).im2col(x, geom), dtype)
    agree(REF.col2im(cols, x.shape, geom), kernel_ops(device).col2im(cols, x.shape, geom), dtype)


@DEVICES
@given(conv_geometries(), DTYPES, st.booleans(), st.sampled_from([None, "relu"]), st.integers(0, 2**16))
def test_conv2d_forward_and_backward_agree(device, g, dtype, bias, act, seed):
    geom = g["geom"]
    x = uniform((g["n"], g["c"], g["h"], g["w"]), seed, dtype)
    w = uniform((g["out_channels"], g["c"] // g["groups"], *g["kernel_size"]), seed + 1, dtype)
    b = uniform((g["out_channels"],), seed + 2, dtype) if bias else None
    y_ref, cols = REF.conv2d_forward(x, w, b, geom, g["groups"], act)
    y_emu, _ = kernel_ops(device).conv2d_forward(x, w, b, geom, g["groups"], act)
    kh, kw = g["kernel_size"]
    agree(y_ref, y_emu, dtype, reduction=g["c"] // g["groups"] * kh * kw)
    dy = uniform(y_ref.shape, seed + 3, dtype)
    # the longest sums: dweight over n * out_h * out_w, dx over (out / groups) * kh * kw
    k = max(g["n"] * g["out_h"] * g["out_w"], g["out_channels"] // g["groups"] * kh * kw)
    nb = g["out_channels"] if bias else None
    agree(param_grads(REF.conv2d_backward, dy, cols, w, x.shape, geom, g["groups"], weight_shape=w.shape, bias=nb,
                      dtype=dtype)[:2 + bias],
          param_grads(kernel_ops(device).conv2d_backward, dy, cols, w, x.shape, geom, g["groups"], weight_shape=w.shape,
                      bias=nb, dtype=dtype)[:2 + bias], dtype, reduction=k)
    # the addend (a residual's other path), summed into dx by the input-gradient kernel
    add = uniform(x.shape, seed + 4, dtype)
    agree(REF.conv2d_backward(dy, cols, w, x.shape, geom, g["groups"], None, None, True, add),
          kernel_ops(device).conv2d_backward(dy, cols, w, x.shape, geom, g["groups"], None, None, True, add), dtype,
          reduction=k)


@DEVICES
@given(pool_geometries(), DTYPES, st.integers(0, 2**16))
def test_maxpool_agrees_on_tie_free_inputs(device, g, dtype, seed):
    geom = g["geom"]
    x = tie_free((g["n"], g["c"], g["h"], g["w"]), seed, dtype)
    (y, arg), (y2, arg2) = REF.maxpool_forward(x, geom), kernel_ops(device).maxpool_forward(x, geom)
    agree((y, arg), (y2, arg2), dtype)
    dy = uniform(y.shape, seed + 1, dtype)
    agree(REF.maxpool_backward(dy, arg, x.shape, geom),
          kernel_ops(device).maxpool_backward(dy, arg, x.shape, geom), dtype)


@DEVICES
@given(pool_geometries(), DTYPES)
def test_maxpool_agrees_on_exact_ties(device, g, dtype):
    geom = g["geom"]
    x = np.zeros((g["n"], g["c"], g["h"], g["w"]), dtype)
    x[..., ::2, :] = 1.0  # rows of ties, as on MNIST's blank borders and saturated strokes
    (y, arg), (y2, arg2) = REF.maxpool_forward(x, geom), kernel_ops(device).maxpool_forward(x, geom)
    agree((y, arg), (y2, arg2), dtype)
    dy = np.ones_like(y)
    agree(REF.maxpool_backward(dy, arg, x.shape, geom),
          kernel_ops(device).maxpool_backward(dy, arg, x.shape, geom), dtype)


@DEVICES
@given(pool_geometries(), DTYPES, st.integers(0, 2**16))
def test_avgpool_agrees(device, g, dtype, seed):
    geom = g["geom"]
    x = uniform((g["n"], g["c"], g["h"], g["w"]), seed, dtype)
    y = REF.avgpool_forward(x, geom)
    agree(y, kernel_ops(device).avgpool_forward(x, geom), dtype)
    dy = uniform(y.shape, seed + 1, dtype)
    agree(REF.avgpool_backward(dy, x.shape, geom), kernel_ops(device).avgpool_backward(dy, x.shape, geom), dtype)


@DEVICES
@given(st.integers(1, 5), st.integers(1, 7), st.integers(1, 50), DTYPES, st.booleans(),
       st.sampled_from([None, "relu"]), st.booleans(), st.integers(0, 2**16))
def test_bias_activation_and_relu_backward_agree(device, n, c, inner, dtype, channel_major, act, bias, seed):
    x = uniform((c, n, inner) if channel_major else (n, c, inner), seed, dtype)
    b = uniform((c,), seed + 1, dtype) if bias else None
    y = REF.bias_act(x, b, act, channel_major)
    agree(y, kernel_ops(device).bias_act(x, b, act, channel_major), dtype)
    dy = uniform(y.shape, seed + 2, dtype)
    agree(REF.relu_backward(dy, y), kernel_ops(device).relu_backward(dy, y), dtype)


@DEVICES
@given(st.integers(1, 70), st.integers(2, 12), st.floats(0.1, 50), DTYPES, st.integers(0, 2**16))
def test_softmax_cross_entropy_agrees(device, n, k, scale, dtype, seed):
    logits = uniform((n, k), seed, dtype) * dtype(scale)
    labels = np.random.default_rng(seed).integers(0, k, n)
    loss, probs = REF.softmax_xent_forward(logits, labels)
    loss2, probs2 = kernel_ops(device).softmax_xent_forward(logits, labels)
    # a row sums k exponentials; the loss's terms log(s) and picked - m are up to ~2 * scale
    agree(loss, loss2, dtype, reduction=k, scale=2 * scale)
    agree(probs, probs2, dtype, reduction=k)
    agree(REF.softmax_xent_backward(probs, labels, 1 / n),
          kernel_ops(device).softmax_xent_backward(probs, labels, 1 / n), dtype)


@DEVICES
@given(st.integers(1, 200), DTYPES, st.sampled_from([0.0, 0.9]), st.booleans(), st.sampled_from([0.0, 1e-3]),
       st.integers(0, 2**16))
def test_optimizer_updates_agree(device, size, dtype, momentum, nesterov, wd, seed):
    nesterov = nesterov and momentum > 0
    state = [uniform((size,), seed + i, dtype) for i in range(4)]
    a = [s.copy() for s in state]
    b = [s.copy() for s in state]
    REF.sgd_update(a[0], a[1], a[2], 0.05, momentum, wd, nesterov)
    kernel_ops(device).sgd_update(b[0], b[1], b[2], 0.05, momentum, wd, nesterov)
    agree(tuple(a), tuple(b), dtype)
    m = [s.copy() for s in state] + [np.abs(state[3])]
    k = [s.copy() for s in state] + [np.abs(state[3])]
    REF.adam_update(m[0], m[1], m[2], m[4], 1e-3, 0.9, 0.999, 1e-8, wd, 0.1, 0.001)
    kernel_ops(device).adam_update(k[0], k[1], k[2], k[4], 1e-3, 0.9, 0.999, 1e-8, wd, 0.1, 0.001)
    agree((m[0], m[2], m[4]), (k[0], k[2], k[4]), dtype)


@pytest.mark.parametrize("op", ["col2im", "maxpool_backward", "avgpool_backward", "relu_backward",
                                "softmax_xent_backward"])
@DEVICES
def test_backward_kernels_are_bitwise_deterministic(device, op):
    rng = np.random.default_rng(0)
    geom = ConvGeometry(3, 3, 1, 1, 1, 1, 1, 1, 9, 9)
    pool = PoolGeometry(*geom)
    x = rng.standard_normal((4, 3, 9, 9)).astype(np.float32)
    ops = HostView(EmulatedOps(block=64, max_blocks=4)) if device == "emu" else kernel_ops(device)
    if op == "col2im":
        args = (ops.im2col(x, geom), x.shape, geom)
    elif op == "maxpool_backward":
        y, arg = ops.maxpool_forward(x, pool)
        args = (np.ones_like(y), arg, x.shape, pool)
    elif op == "avgpool_backward":
        args = (x, x.shape, pool)
    elif op == "relu_backward":
        args = (x, x)
    else:
        _, probs = ops.softmax_xent_forward(x.reshape(36, -1), rng.integers(0, 27, 36))
        args = (probs, rng.integers(0, 27, 36), 1 / 36)
    first = getattr(ops, op)(*args)
    for _ in range(3):
        assert getattr(ops, op)(*args).tobytes() == first.tobytes()


@DEVICES
@given(st.integers(1, 30), st.integers(2, 12), st.floats(30, 60), st.integers(0, 2**16))
def test_softmax_cross_entropy_keeps_small_losses_next_to_large_logits(device, n, k, offset, seed):
    """loss = log(s) - (picked - m): with the label on the row maximum m in [30, 60], log(s) + m - picked
    would round log(s) (here ~1e-3) to a multiple of float32's spacing there (2e-6 to 4e-6)."""
    rng = np.random.default_rng(seed)
    logits = (rng.uniform(-1, 1, (n, k)) - 8.0).astype(np.float32)
    labels = rng.integers(0, k, n)
    logits[np.arange(n), labels] = 0.0
    logits += np.float32(offset)
    l64 = logits.astype(np.float64)
    exact = np.log(np.exp(l64 - l64.max(axis=1, keepdims=True)).sum(axis=1))  # picked == m
    for ops in (REF, kernel_ops(device)):
        loss, _ = ops.softmax_xent_forward(logits, labels)
        np.testing.assert_allclose(loss, exact, rtol=1e-4, atol=4e-7)
