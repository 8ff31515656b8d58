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
from hypothesis import given
from hypothesis import strategies as st

from dualnet.ops.cuda import EmulatedOps
from dualnet.ops.geometry import ConvGeometry, PoolGeometry
from dualnet.ops.reference import ReferenceOps
from dualnet.testing import conv_geometries, param_grads, pool_geometries, tie_free, uniform

REF = ReferenceOps()
DTYPES = st.sampled_from([np.float64, np.float32])
_OPS: dict = {}


class HostView:
    """Calls a device's ops with NumPy arguments: moves them in, results (and arrays updated
    in place) back out, so one test body serves every device. The moves are explicit
    (`xp.asarray`, `.get()`): emu arrays refuse implicit ones, as CuPy's do."""

    def __init__(self, ops):
        self.ops = ops

    def __getattr__(self, name):
        fn = getattr(self.ops, name)
        xp = self.ops.xp

        def call(*args):
            moved = [_device(xp, a) for a in args]
            out = fn(*moved)
            for a, m in zip(args, moved):
                if isinstance(a, np.ndarray) and m is not a:
                    np.copyto(a, m.get())
            return _host(out)
        return call


def _device(xp, a):
    """Host arrays moved to the device, inside tuples too (a `saved` value passed back to a
    backward op); geometry NamedTuples keep their type."""
    if isinstance(a, np.ndarray):
        return xp.asarray(a)
    if isinstance(a, tuple):
        items = [_device(xp, x) for x in a]
        return type(a)(*items) if hasattr(a, "_fields") else tuple(items)
    return a


def _host(out):
    if isinstance(out, tuple):
        items = [_host(o) for o in out]
        return type(out)(*items) if hasattr(out, "_fields") else tuple(items)
    return out.get() if hasattr(out, "get") else out


def kernel_ops(name):
    if name not in _OPS:
        if name == "emu":
            _OPS[name] = HostView(EmulatedOps(check=True, block=32, max_blocks=3))
        else:
            from dualnet.ops.cuda import CupyOps
            _OPS[name] = HostView(CupyOps(0))
    return _OPS[name]


DEVICES = pytest.mark.parametrize("device", ["emu", pytest.param("gpu", marks=pytest.mark.gpu)])
_TOL = {}


def tol(dtype, reduction=1, scale=1.0):
    """float64 within 1e-12 relative (1e-10 on a GPU: FMA contraction), float32 within 1e-5;
    outputs that sum `reduction` terms of magnitude `scale` get 8 * sqrt(reduction) * eps more
    (times `scale` absolutely): cuBLAS's summation order, CUDA's expf/logf."""
    grow = 8 * np.sqrt(reduction) * np.finfo(dtype).eps if reduction > 1 else 0.0
    if dtype == np.float64:
        return dict(rtol=_TOL.get("rtol64", 1e-12) + grow, atol=1e-13 + grow * scale)
    return dict(rtol=1e-5 + grow, atol=1e-6 + grow * scale)


@pytest.fixture(autouse=True)
def _gpu_tolerance(request):
    _TOL["rtol64"] = 1e-10 if "gpu" in request.node.name else 1e-12


def agree(a, b, dtype, reduction=1, scale=1.0):
    if isinstance(a, tuple):
        for x, y in zip(a, b):
            agree(x, y, dtype, reduction, scale)
        return
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    if a.dtype.kind in "iu":
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(b, a, **tol(dtype, reduction, scale))




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
