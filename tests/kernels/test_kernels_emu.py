"""Every real kernel, float32 and float64, under the checking emulator vs. a plain NumPy reference.

Each call runs twice: block 256 and a tiny grid (2 blocks of 32 threads) whose grid-stride loops
wrap many times; both must agree bit for bit, and with the reference within rtol (1e-12 float64,
1e-5 float32).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dualnet.ops.geometry import out_size

DTYPES = [np.float32, np.float64]
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
BACKWARD = ["col2im", "maxpool_backward", "avgpool_backward", "relu_backward",
            "softmax_xent_backward"]


def run(launchers, name, dtype, *args):
    """Launch on every launcher with fresh copies of the arrays; all results must be identical.

    Returns the arrays (not the scalars) of the first launch, in argument order.
    """
    results = []
    for launcher in launchers:
        copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        launcher.launch(name, dtype, *copies)
        results.append(copies)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            if isinstance(a, np.ndarray):
                assert a.tobytes() == b.tobytes(), f"{name}: launch configurations disagree"
    return [a for a in results[0] if isinstance(a, np.ndarray)]


def close(got, want):
    rtol = RTOL[got.dtype]
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


@st.composite
def conv_geometry(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    g = [n, c]
    dims = []
    for _ in range(2):
        k, s, d = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
        p = draw(st.integers(0, k // 2))
        lo = max(1, d * (k - 1) + 1 - 2 * p)
        size = draw(st.integers(lo, lo + 6))
        dims.append((size, k, s, p, d, out_size(size, k, s, p, d)))
    (h, kh, sh, ph, dh, oh), (w, kw, sw, pw, dw, ow) = dims
    return tuple(g + [h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow])


@st.composite
def pool_geometry(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    dims = []
    for _ in range(2):
        k, s = draw(st.integers(1, 5)), draw(st.integers(1, 3))
        p = draw(st.integers(0, k // 2))
        size = draw(st.integers(max(1, k - 2 * p), k + 6))
        dims.append((size, k, s, p, out_size(size, k, s, p)))
    (h, kh, sh, ph, oh), (w, kw, sw, pw, ow) = dims
    return (n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow)


seeds = st.integers(0, 2**32 - 1)


def launch_args(g, avg=False):
    """The pooling kernels' scalars for a 12-field pool geometry: the convolution's order with
    dilation 1 (dilated windows: tests/ops/test_cuda.py), and for average pooling include_pad 1."""
    return (*g[:10], 1, 1, *g[10:], *((1,) if avg else ()))


# ----------------------------------------------------------------------------- references

def ref_im2col(x, g):
    n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = g
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((c, kh, kw, n, oh, ow), x.dtype)
    for i in range(kh):
        for j in range(kw):
            win = xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            cols[:, i, j] = win.transpose(1, 0, 2, 3)
    return cols


def ref_col2im(cols, g):
    n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = g
    xp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw] += \
                cols[:, i, j].transpose(1, 0, 2, 3)
    return xp[:, :, ph:ph + h, pw:pw + w]


def pool_windows(x, g, fill):
    """(kh*kw, n, c, oh, ow) window values, kernel offsets in row-major order."""
    n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow = g
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw), fill, x.dtype)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    return np.stack([xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
                     for i in range(kh) for j in range(kw)])


def ref_maxpool(x, g):
    n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow = g
    win = pool_windows(x, g, -np.inf)
    k = win.argmax(axis=0)  # first maximum
    y = np.take_along_axis(win, k[None], axis=0)[0]
    iy = np.arange(oh).reshape(oh, 1) * sh - ph + k // kw
    ix = np.arange(ow).reshape(1, ow) * sw - pw + k % kw
    return y, (iy * w + ix).astype(np.int32)


def ref_maxpool_backward(dy, argmax, g):
    n, c, h, w = g[:4]
    dx = np.zeros(n * c * h * w, dy.dtype)
    flat = (np.arange(n * c).reshape(-1, 1) * (h * w) + argmax.reshape(n * c, -1)).ravel()
    np.add.at(dx, flat, dy.ravel())  # in order: oy ascending, ox ascending
    return dx.reshape(n, c, h, w)


def ref_avgpool(x, g):
    kh, kw = g[4:6]
    total = np.zeros(pool_windows(x, g, 0)[0].shape, x.dtype)
    for win in pool_windows(x, g, 0):
        total += win
    return total / x.dtype.type(kh * kw)


def ref_avgpool_backward(dy, g):
    n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow = g
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dy.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += dy
    return dxp[:, :, ph:ph + h, pw:pw + w] / dy.dtype.type(kh * kw)


# ----------------------------------------------------------------------------- im2col / col2im

@pytest.mark.parametrize("dtype", DTYPES)
@given(g=conv_geometry(), seed=seeds)
def test_im2col_col2im(launchers, dtype, g, seed):
    n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = g
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, c, h, w)).astype(dtype)
    cols = np.empty((c, kh, kw, n, oh, ow), dtype)
    _, cols = run(launchers, "im2col", dtype, x, cols, *g)
    assert cols.tobytes() == ref_im2col(x, g).tobytes()  # a pure copy: exact
    dcols = rng.uniform(-1, 1, cols.shape).astype(dtype)
    _, dx = run(launchers, "col2im", dtype, dcols, np.empty_like(x), *g)
    close(dx, ref_col2im(dcols, g))


# ----------------------------------------------------------------------------- pooling

def maxpool_case(launchers, dtype, g, x, rng):
    n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow = g
    y, arg = np.empty((n, c, oh, ow), dtype), np.empty((n, c, oh, ow), np.int32)
    _, y, arg = run(launchers, "maxpool_forward", dtype, x, y, arg, *launch_args(g))
    want_y, want_arg = ref_maxpool(x, g)
    assert y.tobytes() == want_y.tobytes()
    np.testing.assert_array_equal(arg, want_arg)
    dy = rng.uniform(-1, 1, y.shape).astype(dtype)
    _, _, dx = run(launchers, "maxpool_backward", dtype, dy, arg, np.empty_like(x), *launch_args(g))
    close(dx, ref_maxpool_backward(dy, arg, g))
    return arg


@pytest.mark.parametrize("dtype", DTYPES)
@given(g=pool_geometry(), seed=seeds)
def test_maxpool_tie_free(launchers, dtype, g, seed):
    rng = np.random.default_rng(seed)
    n, c, h, w = g[:4]
    x = rng.permutation(np.linspace(-1, 1, n * c * h * w)).astype(dtype).reshape(n, c, h, w)
    maxpool_case(launchers, dtype, g, x, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@given(g=pool_geometry(), seed=seeds, zeros=st.booleans())
def test_maxpool_ties_first_max_wins(launchers, dtype, g, seed, zeros):
    rng = np.random.default_rng(seed)
    n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow = g
    x = np.zeros((n, c, h, w), dtype) if zeros else rng.integers(0, 3, (n, c, h, w)).astype(dtype)
    arg = maxpool_case(launchers, dtype, g, x, rng)
    if zeros:  # every window's first in-bounds element, row-major
        iy = np.maximum(np.arange(oh) * sh - ph, 0).reshape(oh, 1)
        ix = np.maximum(np.arange(ow) * sw - pw, 0).reshape(1, ow)
        np.testing.assert_array_equal(arg, np.broadcast_to(iy * w + ix, arg.shape))


@pytest.mark.parametrize("dtype", DTYPES)
@given(g=pool_geometry(), seed=seeds)
def test_avgpool(launchers, dtype, g, seed):
    rng = np.random.default_rng(seed)
    n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow = g
    x = rng.uniform(-1, 1, (n, c, h, w)).astype(dtype)
    _, y = run(launchers, "avgpool_forward", dtype, x, np.empty((n, c, oh, ow), dtype), *launch_args(g, True))
    close(y, ref_avgpool(x, g))
    dy = rng.uniform(-1, 1, y.shape).astype(dtype)
    _, dx = run(launchers, "avgpool_backward", dtype, dy, np.empty_like(x), *launch_args(g, True))
    close(dx, ref_avgpool_backward(dy, g))


# ----------------------------------------------------------------------------- activation

@pytest.mark.parametrize("dtype", DTYPES)
@given(n=st.integers(1, 4), c=st.integers(1, 5), inner=st.integers(1, 40), act=st.sampled_from([0, 1]),
       channel_major=st.sampled_from([0, 1]), seed=seeds)
def test_bias_act_and_relu_backward(launchers, dtype, n, c, inner, act, channel_major, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (c, n, inner) if channel_major else (n, c, inner)).astype(dtype)
    bias = rng.uniform(-1, 1, c).astype(dtype)
    _, _, y = run(launchers, "bias_act_forward", dtype, x, bias, np.empty((n, c, inner), dtype),
                  n, c, inner, act, channel_major)
    want = (x.transpose(1, 0, 2) if channel_major else x) + bias[None, :, None]
    if act:
        want = np.where(want < 0, dtype(0), want)
    assert y.tobytes() == want.tobytes()
    dy = rng.uniform(-1, 1, y.shape).astype(dtype)
    _, _, dx = run(launchers, "relu_backward", dtype, dy, y, np.empty_like(y), y.size)
    assert dx.tobytes() == np.where(y > 0, dy, dtype(0)).tobytes()


# ----------------------------------------------------------------------------- loss

@pytest.mark.parametrize("dtype", DTYPES)
@given(n=st.integers(1, 20), k=st.integers(1, 12), scale=st.floats(-2, 2),
       spread=st.sampled_from([5.0, 1000.0]), seed=seeds)
def test_softmax_xent(launchers, dtype, n, k, scale, spread, seed):
    """spread 1000: exp overflows unless the row maximum is subtracted."""
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(n, k)) * spread).astype(dtype)
    labels = rng.integers(0, k, n).astype(np.int32)
    _, _, probs, loss = run(launchers, "softmax_xent_forward", dtype, logits, labels,
                            np.empty((n, k), dtype), np.empty(n, dtype), n, k)
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    s = e.sum(axis=1, keepdims=True)
    close(probs, e / s)
    # the kernel's form, log(s) - (picked - m): the small terms survive next to a large |m|
    close(loss, (np.log(s) - (logits[np.arange(n), labels][:, None] - m)).ravel())
    _, _, d = run(launchers, "softmax_xent_backward", dtype, probs, labels, np.empty_like(probs),
                  n, k, scale)
    want = probs.copy()
    want[np.arange(n), labels] -= 1
    assert d.tobytes() == (want * dtype(scale)).tobytes()


# ----------------------------------------------------------------------------- optimizers

@pytest.mark.parametrize("dtype", DTYPES)
@given(size=st.integers(1, 300), momentum=st.sampled_from([0.0, 0.9]), nesterov=st.integers(0, 1),
       weight_decay=st.sampled_from([0.0, 1e-2]), seed=seeds)
def test_sgd_update(launchers, dtype, size, momentum, nesterov, weight_decay, seed):
    rng = np.random.default_rng(seed)
    p, grad, vel = (rng.uniform(-1, 1, size).astype(dtype) for _ in range(3))
    lr = 0.1
    p2, _, v2, *_ = run(launchers, "sgd_update", dtype, p, grad, vel, size, lr, momentum,
                        weight_decay, nesterov)
    t = np.dtype(dtype).type
    g = grad + t(weight_decay) * p if weight_decay else grad
    if momentum:
        vel = t(momentum) * vel + g
        g = g + t(momentum) * vel if nesterov else vel
    close(v2, vel)
    close(p2, p - t(lr) * g)


@pytest.mark.parametrize("dtype", DTYPES)
@given(size=st.integers(1, 300), weight_decay=st.sampled_from([0.0, 1e-2]), step=st.integers(1, 5),
       seed=seeds)
def test_adam_update(launchers, dtype, size, weight_decay, step, seed):
    rng = np.random.default_rng(seed)
    p, grad, m = (rng.uniform(-1, 1, size).astype(dtype) for _ in range(3))
    v = rng.uniform(0, 1, size).astype(dtype)
    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
    bc1, bc2 = 1 - b1**step, 1 - b2**step
    p2, _, m2, v2, *_ = run(launchers, "adam_update", dtype, p, grad, m, v, size, lr, b1, b2, eps,
                            weight_decay, bc1, bc2)
    t = np.dtype(dtype).type
    g = grad + t(weight_decay) * p if weight_decay else grad
    m = t(b1) * m + (t(1) - t(b1)) * g
    v = t(b2) * v + (t(1) - t(b2)) * (g * g)
    close(m2, m)
    close(v2, v)
    close(p2, p - t(lr) * (m / t(bc1)) / (np.sqrt(v / t(bc2)) + t(eps)))


# ----------------------------------------------------------------------------- determinism

def backward_args(emu, name, dtype, rng):
    """Fixed-geometry arguments of one backward kernel (inputs random, outputs empty)."""
    conv = (2, 3, 9, 8, 3, 2, 2, 1, 1, 1, 2, 1)  # n c h w kh kw sh sw ph pw dh dw
    n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw = conv
    oh, ow = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
    pool = (n, c, h, w, 3, 3, 2, 2, 1, 1, out_size(h, 3, 2, 1), out_size(w, 3, 2, 1))
    u = lambda *shape: rng.uniform(-1, 1, shape).astype(dtype)  # noqa: E731
    x = np.empty((n, c, h, w), dtype)
    if name == "col2im":
        return u(c, kh, kw, n, oh, ow), x, *conv, oh, ow
    if name == "maxpool_backward":
        y, arg = np.empty((n, c) + pool[-2:], dtype), np.empty((n, c) + pool[-2:], np.int32)
        emu.launch("maxpool_forward", dtype, u(n, c, h, w), y, arg, *launch_args(pool))
        return u(*y.shape), arg, x, *launch_args(pool)
    if name == "avgpool_backward":
        return u(n, c, *pool[-2:]), x, *launch_args(pool, True)
    if name == "relu_backward":
        return u(50), u(50), np.empty(50, dtype), 50
    labels = rng.integers(0, 7, 5).astype(np.int32)
    return u(5, 7), labels, np.empty((5, 7), dtype), 5, 7, 0.2


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKWARD)
def test_backward_kernels_are_deterministic(emu, dtype, name):
    args = backward_args(emu, name, dtype, np.random.default_rng(7))
    first = run([emu], name, dtype, *args)
    second = run([emu], name, dtype, *args)
    for a, b in zip(first, second):
        if isinstance(a, np.ndarray):
            assert a.tobytes() == b.tobytes()
