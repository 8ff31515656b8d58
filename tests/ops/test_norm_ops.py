"""The research-grade layers' ops (batch norm, global average pooling, leaky ReLU) agree across
tables: CpuOps and the kernel-backed ops ("emu": checking emulator with tiny grids, so every
grid-stride loop wraps; "gpu" where CuPy sees a device) against the reference, float32 and float64.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dualnet.ops.cpu import CpuOps
from dualnet.ops.cuda import EmulatedOps
from dualnet.ops.reference import ReferenceOps
from dualnet.testing import norm_shapes, param_grads, uniform

REF = ReferenceOps()
DTYPES = st.sampled_from([np.float64, np.float32])
TABLES = pytest.mark.parametrize("table", ["cpu", "emu", pytest.param("gpu", marks=pytest.mark.gpu)])
_CACHE: dict = {}


def ops(name):
    if name not in _CACHE:
        if name == "cpu":
            _CACHE[name] = CpuOps()
        elif name == "emu":
            _CACHE[name] = EmulatedOps(check=True, block=32, max_blocks=3)
        else:
            from dualnet.ops.cuda import CupyOps

            _CACHE[name] = CupyOps(0)
    return _CACHE[name]


def host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


def close(got, want, dtype, gpu=False, amplify=1.0):
    """`amplify`: how much the value magnifies rounding in the sums it is made of (a batch norm's
    input gradient carries 1 / std: a channel of nearly equal values makes it large, so two float32
    summation orders differ by more than rtol there)."""
    rtol = 1e-5 if dtype == np.float32 else (1e-10 if gpu else 1e-11)
    np.testing.assert_allclose(host(got), want, rtol=rtol, atol=rtol * max(1.0, amplify))


def inv_std_max(x):
    """The largest 1 / std over x's channels (channel axis 1), the amplification of dx's rounding."""
    axes = (0, *range(2, x.ndim))
    return float((1 / np.sqrt(x.astype(np.float64).var(axis=axes) + 1e-5)).max())


@TABLES
@given(st.integers(0, 2).flatmap(norm_shapes), DTYPES, st.booleans(), st.integers(0, 2**16))
def test_batchnorm_ops_agree_with_the_reference(table, shape, dtype, affine, seed):
    t = ops(table)
    xp = t.xp
    c = shape[1]
    x, dy = uniform(shape, seed, dtype, -2, 3), uniform(shape, seed + 1, dtype)
    w = uniform((c,), seed + 2, dtype, 0.5, 2) if affine else None
    b = uniform((c,), seed + 3, dtype) if affine else None
    rm, rv = uniform((c,), seed + 4, dtype), uniform((c,), seed + 5, dtype, 0.5, 2)
    dev = [xp.asarray(a) if a is not None else None for a in (x, dy, w, b)]
    d_rm, d_rv = xp.asarray(rm.copy()), xp.asarray(rv.copy())
    y, saved = REF.batchnorm_forward(x, w, b, rm, rv, 1e-5, 0.3)
    y_t, saved_t = t.batchnorm_forward(dev[0], dev[2], dev[3], d_rm, d_rv, 1e-5, 0.3)
    gpu = table == "gpu"
    for got, want in ((y_t, y), (d_rm, rm), (d_rv, rv)):  # the running statistics update in place
        close(got, want, dtype, gpu)
    grads = {"weight_shape": (c,), "bias": c, "dtype": dtype, "xp": xp}
    want_grads = param_grads(REF.batchnorm_backward, dy, saved, w, **{**grads, "xp": np})
    for got, want in zip(param_grads(t.batchnorm_backward, dev[1], saved_t, dev[2], **grads), want_grads):
        close(got, want, dtype, gpu, inv_std_max(x))
    dx_none, dw_alone, db_alone = param_grads(t.batchnorm_backward, dev[1], saved_t, dev[2], need_dx=False,
                                              **grads)
    assert dx_none is None
    close(dw_alone, want_grads[1], dtype, gpu)
    close(db_alone, want_grads[2], dtype, gpu)
    close(t.batchnorm_eval(dev[0], dev[2], dev[3], d_rm, d_rv, 1e-5), REF.batchnorm_eval(x, w, b, rm, rv, 1e-5),
          dtype, gpu)


@TABLES
@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 7), st.integers(1, 7), DTYPES, st.integers(0, 2**16))
def test_global_avgpool_ops_agree_with_the_reference(table, n, c, h, w, dtype, seed):
    t = ops(table)
    x, dy = uniform((n, c, h, w), seed, dtype), uniform((n, c), seed + 1, dtype)
    close(t.global_avgpool_forward(t.xp.asarray(x)), REF.global_avgpool_forward(x), dtype, table == "gpu")
    close(t.global_avgpool_backward(t.xp.asarray(dy), x.shape), REF.global_avgpool_backward(dy, x.shape), dtype,
          table == "gpu")


@TABLES
@given(st.lists(st.integers(1, 7), min_size=1, max_size=4), st.floats(-1, 1), DTYPES, st.integers(0, 2**16))
def test_leaky_relu_ops_agree_with_the_reference(table, shape, slope, dtype, seed):
    t = ops(table)
    x, dy = uniform(shape, seed, dtype), uniform(shape, seed + 1, dtype)
    x.reshape(-1)[0] = 0  # the kink itself
    close(t.leaky_relu_forward(t.xp.asarray(x), slope), REF.leaky_relu_forward(x, slope), dtype)
    close(t.leaky_relu_backward(t.xp.asarray(dy), t.xp.asarray(x), slope), REF.leaky_relu_backward(dy, x, slope),
          dtype)


def test_batchnorm_on_the_cpu_tables_batch_last_views_keeps_values():
    """CpuOps' convolutions hand out (n, c, h, w) views of batch-last buffers; batch norm must
    read them as they are."""
    x = np.ascontiguousarray(uniform((3, 4, 5, 2), 0).transpose(3, 0, 1, 2)).transpose(1, 2, 3, 0)
    assert not x.flags.c_contiguous
    rm, rv = np.zeros(4), np.ones(4)
    y, saved = CpuOps().batchnorm_forward(x, None, None, rm, rv, 1e-5, 0.1)
    y_ref, _ = REF.batchnorm_forward(np.ascontiguousarray(x), None, None, np.zeros(4), np.ones(4), 1e-5, 0.1)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-14)


@TABLES
@given(st.integers(0, 2).flatmap(norm_shapes), DTYPES, st.booleans(), st.sampled_from([None, "relu"]), st.booleans(),
       st.integers(0, 2**16))
def test_fused_batchnorm_act_ops_agree_with_the_reference(table, shape, dtype, affine, act, residual, seed):
    """batchnorm_act_forward / _backward / _eval and add_relu_forward against the reference's
    composition (batch norm, then the residual added, then the ReLU)."""
    t = ops(table)
    xp = t.xp
    c = shape[1]
    x, dy = uniform(shape, seed, dtype, -2, 3), uniform(shape, seed + 1, dtype)
    r = uniform(shape, seed + 6, dtype) if residual else None
    w = uniform((c,), seed + 2, dtype, 0.5, 2) if affine else None
    b = uniform((c,), seed + 3, dtype) if affine else None
    rm, rv = uniform((c,), seed + 4, dtype), uniform((c,), seed + 5, dtype, 0.5, 2)
    dev = [xp.asarray(a) if a is not None else None for a in (x, dy, w, b, r)]
    d_rm, d_rv = xp.asarray(rm.copy()), xp.asarray(rv.copy())
    gpu = table == "gpu"
    y, saved = REF.batchnorm_act_forward(x, w, b, rm, rv, 1e-5, 0.3, act, r)
    y_t, saved_t = t.batchnorm_act_forward(dev[0], dev[2], dev[3], d_rm, d_rv, 1e-5, 0.3, act, dev[4])
    for got, want in ((y_t, y), (d_rm, rm), (d_rv, rv)):
        close(got, want, dtype, gpu)
    grads = {"weight_shape": (c,), "bias": c, "dtype": dtype, "xp": xp}
    (dx_w, dres_w), dw_w, db_w = param_grads(REF.batchnorm_act_backward, dy, saved, w, **{**grads, "xp": np})
    (dx_g, dres_g), dw_g, db_g = param_grads(t.batchnorm_act_backward, dev[1], saved_t, dev[2], **grads)
    assert (dres_g is None) == (dres_w is None) == (not residual)
    for g, wv in ((dx_g, dx_w), (dres_g, dres_w), (dw_g, dw_w), (db_g, db_w)):
        if wv is not None:
            close(g, wv, dtype, gpu, inv_std_max(x))
    (dx_none, _), _, _ = param_grads(t.batchnorm_act_backward, dev[1], saved_t, dev[2], need_dx=False,
                                     **grads)
    assert dx_none is None
    close(t.batchnorm_act_eval(dev[0], dev[2], dev[3], d_rm, d_rv, 1e-5, act, dev[4]),
          REF.batchnorm_act_eval(x, w, b, rm, rv, 1e-5, act, r), dtype, gpu)
    close(t.add_relu_forward(dev[0], dev[1]), REF.add_relu_forward(x, dy), dtype, gpu)


def test_reference_fused_batchnorm_ops_are_the_composition_of_their_parts():
    x, r, dy = uniform((4, 3, 5, 2), 0), uniform((4, 3, 5, 2), 1), uniform((4, 3, 5, 2), 2)
    w, b = uniform((3,), 3, low=0.5, high=2), uniform((3,), 4)
    rm, rv = np.zeros(3), np.ones(3)
    y, saved = REF.batchnorm_act_forward(x, w, b, rm.copy(), rv.copy(), 1e-5, 0.1, "relu", r)
    z, bn_saved = REF.batchnorm_forward(x, w, b, rm.copy(), rv.copy(), 1e-5, 0.1)
    np.testing.assert_array_equal(y, np.maximum(z + r, 0))
    grads = {"weight_shape": (3,), "bias": 3, "dtype": np.float64}
    (dx, dres), dw, db = param_grads(REF.batchnorm_act_backward, dy, saved, w, **grads)
    dz = dy * (y > 0)
    np.testing.assert_array_equal(dres, dz)
    for got, want in zip((dx, dw, db), param_grads(REF.batchnorm_backward, dz, bn_saved, w, **grads)):
        np.testing.assert_array_equal(got, want)
