"""The cooperative kernels of the real table (one block per channel, a warp per row) on the checking
emulator, which runs each launch under four schedules and requires bitwise equal outputs, against
NumPy: float64 within 1e-12, float32 within 1e-5 (a tree sum's order differs from NumPy's). Shapes
cover what the fixed-size blocks must handle: rows shorter and longer than a warp or a block, not
multiples of either, one channel, BatchNorm1d's inner = 1."""

from __future__ import annotations

import numpy as np
import pytest

DTYPES = [np.float32, np.float64]
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
NCI = [(1, 1, 1), (3, 2, 1), (2, 3, 5), (4, 1, 300), (1, 2, 256), (5, 3, 49), (2, 2, 1000)]


def close(got, want):
    rtol = RTOL[got.dtype]
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


def _layout(a, channel_major):
    """(base, sn, sc): a (n, c, inner) as the batch-norm kernels read it, C-contiguous or from a
    channel-major base."""
    n, c, inner = a.shape
    if channel_major:
        return np.ascontiguousarray(a.transpose(1, 0, 2)), inner, n * inner
    return a, c * inner, inner


def _misaligned(a):
    """A copy of a whose data starts 4 bytes past a 16-byte boundary: the kernels' scalar path."""
    buf = np.empty(a.size + 16 // a.itemsize, a.dtype)
    skip = (-buf.ctypes.data % 16 + 4) // a.itemsize if a.itemsize == 4 else 1
    out = buf[skip:skip + a.size].reshape(a.shape)
    out[...] = a
    return out


def _bn_case(dtype, shape, seed):
    n, c, inner = shape
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    res, dy = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    w, b = rng.uniform(0.5, 2, c).astype(dtype), rng.standard_normal(c).astype(dtype)
    rm, rv = rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)
    grads = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    return x, res, dy, w, b, rm, rv, grads


def _bn_run(emu, dtype, x, res, dy, w, b, rm, rv, grads, channel_major, act, residual, aligned=True):
    """bn_forward then bn_backward; every output, dx in x's (n, c, inner) view. aligned=False: the
    arrays 4 bytes off a 16-byte boundary (for a launcher that does not stage them)."""
    n, c, inner = x.shape
    base, sn, sc = _layout(x, channel_major)
    if not aligned:
        base, res, dy = _misaligned(base), _misaligned(res), _misaligned(dy)
    dims = (n, c, inner, sn, sc)
    none = np.empty(0, dtype)
    y = np.empty(x.shape, dtype) if aligned else _misaligned(np.empty(x.shape, dtype))
    mean, inv_std, scale = (np.empty(c, dtype) for _ in range(3))
    rm2, rv2 = rm.copy(), rv.copy()
    emu.launch("bn_forward", dtype, base, w, b, res if residual else none, rm2, rv2, y, mean, inv_std, scale, *dims,
               1e-5, 0.1, act, int(residual))
    dz = np.empty(x.shape, dtype) if residual else none
    dx_base = np.empty_like(base)
    wgrad, bgrad = grads[0].copy(), grads[1].copy()  # the layer's gradient buffers: added into
    emu.launch("bn_backward", dtype, dy, y if act else none, base, mean, inv_std, scale, dz, dx_base, wgrad, bgrad,
               *dims, act, int(residual), 1, 1, 1)
    dx = dx_base.transpose(1, 0, 2) if channel_major else dx_base
    return y, mean, inv_std, scale, rm2, rv2, dz, dx, wgrad, bgrad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", NCI, ids=str)
@pytest.mark.parametrize("channel_major", [False, True])
def test_bn_one_block_per_channel(emu, dtype, shape, channel_major):
    """bn_forward (statistics, running statistics, y with ReLU and residual) and bn_backward (dweight
    and dbias added into the gradient buffers, dz, dx in x's layout) against NumPy; shapes whose inner
    is a multiple of 4 take the 16-byte vector path, the others the scalar one."""
    n, c, inner = shape
    m = n * inner
    x, res, dy, w, b, rm, rv, grads = _bn_case(dtype, shape, sum(shape))
    y, mean, inv_std, scale, rm2, rv2, dz, dx, wgrad, bgrad = _bn_run(emu, dtype, x, res, dy, w, b, rm, rv, grads,
                                                                      channel_major, 1, True)
    x64 = x.astype(np.float64)
    mu, var = x64.mean(axis=(0, 2)), x64.var(axis=(0, 2))
    close(mean, mu.astype(dtype))
    close(inv_std, (1 / np.sqrt(var + 1e-5)).astype(dtype))
    close(scale, (w / np.sqrt(var + 1e-5)).astype(dtype))
    close(rm2, (0.9 * rm + 0.1 * mu).astype(dtype))
    if m > 1:
        close(rv2, (0.9 * rv + 0.1 * var * m / (m - 1)).astype(dtype))
    xhat = (x64 - mu[None, :, None]) / np.sqrt(var + 1e-5)[None, :, None]
    want = np.maximum(xhat * w[None, :, None] + b[None, :, None] + res, 0)
    close(y, want.astype(dtype))
    np.testing.assert_array_equal(dz, np.where(y > 0, dy, 0))  # the ReLU's mask: exact
    g = dz.astype(np.float64)
    xh = (x64 - mean.astype(np.float64)[None, :, None]) * inv_std.astype(np.float64)[None, :, None]
    close(bgrad, (grads[1] + g.sum(axis=(0, 2))).astype(dtype))
    close(wgrad, (grads[0] + (g * xh).sum(axis=(0, 2))).astype(dtype))
    want_dx = scale.astype(np.float64)[None, :, None] * (g - g.sum(axis=(0, 2))[None, :, None] / m
                                                         - xh * (g * xh).sum(axis=(0, 2))[None, :, None] / m)
    tol = RTOL[np.dtype(dtype)] * 10
    np.testing.assert_allclose(dx, want_dx.astype(dtype), rtol=tol, atol=tol * max(1.0, float(np.abs(want_dx).max())))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act,residual", [(0, False), (1, False), (0, True)])
def test_bn_paths_agree_and_repeat_bit_for_bit(emu, dtype, act, residual):
    """The vector path (16-byte loads) and the scalar path (the same arrays 4 bytes off a 16-byte
    boundary) give the same bits up to the per-thread grouping of the statistics; each path run twice
    gives the same bits (no order depends on the run); without the ReLU or the residual the outputs
    are still right."""
    shape = (6, 3, 40)  # inner a multiple of 4: the vector path where aligned
    args = _bn_case(dtype, shape, 7)
    from dualnet.kernels.emulator import EmulatorLauncher

    vec = _bn_run(emu, dtype, *args, True, act, residual)
    again = _bn_run(emu, dtype, *args, True, act, residual)
    scalar = _bn_run(EmulatorLauncher(), dtype, *args, True, act, residual, aligned=False)
    for a, b2 in zip(vec, again):
        assert a.tobytes() == b2.tobytes()
    for a, b2 in zip(vec, scalar):
        close(np.ascontiguousarray(b2), np.ascontiguousarray(a))
    x = args[0].astype(np.float64)
    xhat = (x - x.mean(axis=(0, 2))[:, None]) / np.sqrt(x.var(axis=(0, 2)) + 1e-5)[:, None]
    want = xhat * args[3][:, None] + args[4][:, None] + (args[1] if residual else 0)
    close(vec[0], (np.maximum(want, 0) if act else want).astype(dtype))


def test_bn_misaligned_input_takes_the_scalar_path(emu):
    """x 4 bytes off a 16-byte boundary: no vector access (the emulator would report a misaligned
    one), the output still right."""
    from dualnet.kernels.emulator import EmulatorLauncher

    plain = EmulatorLauncher()  # the checking one stages (and so realigns) every array
    x = _misaligned(np.full((2, 1, 8), 3, np.float32))
    y = _misaligned(np.empty((2, 1, 8), np.float32))
    c1, c0 = np.ones(1, np.float32), np.zeros(1, np.float32)
    plain.launch("bn_forward", np.float32, x, c1, c0, np.empty(0, np.float32), c1.copy(), c1.copy(), y,
                 *(np.empty(1, np.float32) for _ in range(3)), 2, 1, 8, 8, 8, 1e-5, 0.1, 0, 0)
    np.testing.assert_array_equal(y, np.zeros_like(y))  # constant input: zero output


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act,residual", [(0, False), (1, False), (1, True)])
@pytest.mark.parametrize("channel_major", [False, True])
def test_bn_apply_fuses_relu_and_the_residual_add(launchers, dtype, act, residual, channel_major):
    n, c, inner = 3, 4, 10
    rng = np.random.default_rng(act + 2 * residual)
    x, res = (rng.standard_normal((n, c, inner)).astype(dtype) for _ in range(2))
    mean, scale, bias = (rng.standard_normal(c).astype(dtype) for _ in range(3))
    want = (x - mean[None, :, None]) * scale[None, :, None] + bias[None, :, None]
    if residual:
        want = want + res
    if act:
        want = np.maximum(want, 0)
    base, sn, sc = _layout(x, channel_major)
    for launcher in launchers:
        y = np.empty_like(x)
        launcher.launch("bn_apply", dtype, base, mean, scale, bias, res if residual else np.empty(0, dtype), y, n, c,
                        inner, sn, sc, act, int(residual))
        np.testing.assert_array_equal(y, want)  # elementwise, same order: bit for bit


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 31, 33, 100])
def test_softmax_xent_warp_per_row(emu, dtype, k):
    n = 11  # two blocks of eight warps, the second partly idle
    rng = np.random.default_rng(k)
    logits = (rng.standard_normal((n, k)) * 10).astype(dtype)
    labels = rng.integers(0, k, n).astype(np.int32)
    labels[3] = k  # out of range: NaN loss, no out-of-bounds read
    probs, loss = np.empty((n, k), dtype), np.empty(n, dtype)
    emu.launch("softmax_xent_forward", dtype, logits, labels, probs, loss, n, k)
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    s = np.exp(shifted).sum(axis=1)
    close(probs, (np.exp(shifted) / s[:, None]).astype(dtype))
    ok = np.arange(n) != 3
    close(loss[ok], (np.log(s) - shifted[np.arange(n), np.minimum(labels, k - 1)])[ok].astype(dtype))
    assert np.isnan(loss[3])


@pytest.mark.parametrize("dtype", DTYPES)
def test_step_stats_finds_the_first_maximum_across_lanes(emu, dtype):
    n, k = 6, 70
    logits = np.zeros((n, k), dtype)
    logits[0, [5, 37, 69]] = 2  # a tie across lanes 5, 5 and 5: the first column wins
    logits[1, [40, 8]] = 3      # a tie across lanes 8 and 8 of different passes
    logits[2, 66] = np.nan      # NaN wins, as argmax's does
    logits[2, 1] = 9
    logits[3, [10, 50]] = np.nan  # the first NaN
    logits[4, 33] = -1          # all others 0: the first column
    logits[5] = -np.arange(k)   # the first column
    labels = np.array([5, 8, 66, 10, 0, 0], np.int32)
    grad = np.ones(10, dtype)
    grad[7] = np.inf
    cap, chunk = 2, 4
    tally = np.zeros(2 * cap + 3, dtype)
    emu.launch("step_stats", dtype, np.asarray([0.5], dtype), logits, labels, grad, tally, n, k, grad.size, chunk, 3,
               cap, 1, 7)
    np.testing.assert_array_equal(tally, np.array([0, 3, 0, 6, 0, 7, 0], dtype))
    assert np.argmax(logits, axis=1).tolist() == labels.tolist()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 3, 7), (2, 5, 100)], ids=str)
def test_global_avgpool_warp_per_plane(emu, dtype, shape):
    x = np.random.default_rng(shape[2]).standard_normal(shape).astype(dtype)
    y = np.empty(shape[:2], dtype)
    emu.launch("global_avgpool_forward", dtype, x, y, *shape)
    close(y, x.astype(np.float64).mean(axis=2).astype(dtype))


def test_cooperative_launch_shapes_are_recorded(emu):
    from dualnet.kernels.emulator import EmulatorLauncher

    plain = EmulatorLauncher()
    plain.record = []
    x = np.zeros((2, 3, 5), np.float32)
    plain.launch("global_avgpool_forward", np.float32, x, np.empty((2, 3), np.float32), 2, 3, 5)
    c = np.ones(3, np.float32)
    none, y = np.empty(0, np.float32), np.empty((2, 3, 5), np.float32)
    plain.launch("bn_forward", np.float32, x, c, c, none, c.copy(), c.copy(), y, *(np.empty(3, np.float32)
                 for _ in range(3)), 2, 3, 5, 15, 5, 1e-5, 0.1, 1, 0)
    assert c.size == 3 and plain.record == [("global_avgpool_forward<float>", (1, 1, 1), 256, 0),
                                            ("bn_forward<float>", (3, 1, 1), 1024, 512)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", NCI, ids=str)
def test_channel_sums(emu, dtype, shape):
    rng = np.random.default_rng(shape[2])
    x = rng.standard_normal(shape).astype(dtype)
    y0 = rng.standard_normal(shape[1]).astype(dtype)
    y = y0.copy()
    emu.launch("channel_sums", dtype, x, y, *shape)  # adds into y (a bias gradient's buffer)
    close(y, (y0.astype(np.float64) + x.astype(np.float64).sum(axis=(0, 2))).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geom", [
    # n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw
    (2, 1, 9, 9, 3, 5, 5, 1, 1, 2, 2, 1, 1),
    (3, 2, 7, 6, 4, 3, 2, 2, 1, 1, 0, 1, 2),
    (1, 3, 5, 5, 2, 1, 1, 1, 1, 0, 0, 1, 1),
    (2, 2, 20, 17, 3, 3, 3, 1, 1, 1, 1, 1, 1),
], ids=str)
@pytest.mark.parametrize("has_wgrad,has_bgrad", [(1, 1), (1, 0), (0, 1)])
def test_conv_wgrad_direct_adds_the_products_gradients(emu, dtype, geom, has_wgrad, has_bgrad):
    """conv_wgrad_direct against the column-matrix product the GPU runs otherwise: dz @ cols.T into
    the weight gradient and dz's row sums into the bias gradient, added to what the buffers held."""
    from dualnet.ops.geometry import ConvGeometry
    from dualnet.ops.reference import ReferenceOps

    n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw = geom
    g = ConvGeometry.of(h, w, (kh, kw), (sh, sw), (pw, pw, ph, ph), (dh, dw), "test")
    rng = np.random.default_rng(sum(geom))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    dz = rng.standard_normal((o, n * g.out_h * g.out_w)).astype(dtype)
    k = c * kh * kw
    w0, b0 = rng.standard_normal((o, k)).astype(dtype), rng.standard_normal(o).astype(dtype)
    wgrad, bgrad = w0.copy(), b0.copy()
    emu.launch("conv_wgrad_direct", dtype, dz, x, wgrad if has_wgrad else np.empty(0, dtype),
               bgrad if has_bgrad else np.empty(0, dtype), n, c, h, w, o, *g, has_wgrad, has_bgrad)
    cols = ReferenceOps().im2col(x.astype(np.float64), g).reshape(k, -1)
    dz64 = dz.astype(np.float64)
    close(wgrad, (w0 + dz64 @ cols.T).astype(dtype) if has_wgrad else w0)
    close(bgrad, (b0 + dz64.sum(axis=1)).astype(dtype) if has_bgrad else b0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,o", [(1, 1), (5, 9), (33, 8), (64, 120), (100, 3)], ids=str)
def test_relu_bias_grad_masks_and_adds_the_column_sums(emu, dtype, n, o):
    rng = np.random.default_rng(n * o)
    dy, y = rng.standard_normal((n, o)).astype(dtype), rng.standard_normal((n, o)).astype(dtype)
    b0 = rng.standard_normal(o).astype(dtype)
    dz, bgrad = np.empty_like(dy), b0.copy()
    emu.launch("relu_bias_grad", dtype, dy, y, dz, bgrad, n, o)
    np.testing.assert_array_equal(dz, np.where(y > 0, dy, 0))
    close(bgrad, (b0 + np.where(y > 0, dy, 0).astype(np.float64).sum(axis=0)).astype(dtype))
