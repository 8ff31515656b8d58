"""The CPU table's batch-last path through a residual network (ops/cpu_norm.py, ops/cpu_layout.py):
batch norm (with ReLU and residual), residual + ReLU, global pooling and col2im agree with the
reference on batch-last inputs, keep the batch-last layout, and a ResNet's activations and input
gradients stay batch-last from the first convolution to the global pooling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dualnet as dn
from dualnet.ops import cpu_norm
from dualnet.ops.cpu import CpuOps
from dualnet.ops.cpu_layout import channel_rows, col2im_batch_last, is_batch_last
from dualnet.ops.geometry import ConvGeometry, out_size
from dualnet.ops.reference import ReferenceOps
from dualnet.testing import uniform

REF = ReferenceOps()
CPU = CpuOps()
DTYPES = st.sampled_from([np.float64, np.float32])


def batch_last(a):
    """The values of a (n, c, ...) with batch-last memory, as the CPU table's convolutions write them."""
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 0, -1)), -1, 0)


def close(got, want, dtype):
    rtol = 1e-5 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


def act_backward(table, dy, saved, w, need_dx=True):
    """(dx, dweight, dbias, dresidual) of batchnorm_act_backward, the sums added into zeros."""
    c = dy.shape[1]
    dw, db = np.zeros(c, dy.dtype), np.zeros(c, dy.dtype)
    dx, dres = table.batchnorm_act_backward(dy, saved, w, dw, db, need_dx)
    return dx, dw, db, dres


shapes = st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 6), st.integers(1, 6)).filter(
    lambda s: s[0] * s[2] * s[3] > 1)


@given(shapes, DTYPES, st.booleans(), st.sampled_from([None, "relu"]), st.booleans(), st.booleans(),
       st.sampled_from([1, 7, 50, cpu_norm.BLOCK]), st.integers(0, 2**16))
def test_batch_last_batchnorm_agrees_with_the_reference_and_keeps_the_layout(shape, dtype, affine, act, residual,
                                                                           need_dx, block, seed):
    """block: cpu_norm.BLOCK for the call (small values: blocks of one or a few channels, a last
    block shorter than the others)."""
    before, cpu_norm.BLOCK = cpu_norm.BLOCK, block
    try:
        _check_batch_last_batchnorm(shape, dtype, affine, act, residual, need_dx, seed)
    finally:
        cpu_norm.BLOCK = before


def _check_batch_last_batchnorm(shape, dtype, affine, act, residual, need_dx, seed):
    c = shape[1]
    x, dy = uniform(shape, seed, dtype, -2, 3), uniform(shape, seed + 1, dtype)
    r = uniform(shape, seed + 6, dtype) if residual else None
    w = uniform((c,), seed + 2, dtype, 0.5, 2) if affine else None
    b = uniform((c,), seed + 3, dtype) if affine else None
    rm, rv = uniform((c,), seed + 4, dtype), uniform((c,), seed + 5, dtype, 0.5, 2)
    rm_c, rv_c = rm.copy(), rv.copy()
    y, saved = REF.batchnorm_act_forward(x, w, b, rm, rv, 1e-5, 0.3, act, r)
    y_c, saved_c = CPU.batchnorm_act_forward(batch_last(x), w, b, rm_c, rv_c, 1e-5, 0.3, act,
                                             None if r is None else batch_last(r))
    assert is_batch_last(y_c)
    for got, want in ((y_c, y), (rm_c, rm), (rv_c, rv)):
        close(got, want, dtype)
    want = act_backward(REF, dy, saved, w, need_dx)
    got = act_backward(CPU, batch_last(dy), saved_c, w, need_dx)
    for g, wv in zip(got, want, strict=True):
        assert (g is None) == (wv is None)
        if wv is not None:
            close(g, wv, dtype)
    assert got[0] is None or is_batch_last(got[0])
    assert got[3] is None or is_batch_last(got[3])
    y_e = CPU.batchnorm_act_eval(batch_last(x), w, b, rm, rv, 1e-5, act, None if r is None else batch_last(r))
    assert is_batch_last(y_e)
    close(y_e, REF.batchnorm_act_eval(x, w, b, rm, rv, 1e-5, act, r), dtype)


@given(shapes, DTYPES, st.integers(0, 2**16))
def test_plain_batchnorm_ops_take_the_fast_path_for_batch_last_inputs_and_a_gradient_of_any_layout(shape, dtype,
                                                                                                  seed):
    c = shape[1]
    x, dy = uniform(shape, seed, dtype), uniform(shape, seed + 1, dtype)
    w, b = uniform((c,), seed + 2, dtype, 0.5, 2), uniform((c,), seed + 3, dtype)
    y, saved = REF.batchnorm_forward(x, w, b, np.zeros(c, dtype), np.ones(c, dtype), 1e-5, 0.1)
    y_c, saved_c = CPU.batchnorm_forward(batch_last(x), w, b, np.zeros(c, dtype), np.ones(c, dtype), 1e-5, 0.1)
    close(y_c, y, dtype)
    grads = [np.zeros(c, dtype), np.zeros(c, dtype)]
    want = [REF.batchnorm_backward(dy, saved, w, *grads), *grads]
    for grad in (batch_last(dy), np.ascontiguousarray(dy)):  # a batch-first gradient is copied in once
        got_grads = [np.zeros(c, dtype), np.zeros(c, dtype)]
        got = [CPU.batchnorm_backward(grad, saved_c, w, *got_grads), *got_grads]
        for g, wv in zip(got, want, strict=True):
            close(g, wv, dtype)
    close(CPU.batchnorm_eval(batch_last(x), w, b, np.zeros(c, dtype), np.ones(c, dtype), 1e-5),
          REF.batchnorm_eval(x, w, b, np.zeros(c, dtype), np.ones(c, dtype), 1e-5), dtype)


@given(shapes, DTYPES, st.integers(0, 2**16))
def test_residual_add_relu_and_global_pooling_keep_the_batch_last_layout(shape, dtype, seed):
    a, b = batch_last(uniform(shape, seed, dtype)), batch_last(uniform(shape, seed + 1, dtype))
    y = CPU.add_relu_forward(a, b)
    assert is_batch_last(y)
    np.testing.assert_array_equal(y, REF.add_relu_forward(np.ascontiguousarray(a), np.ascontiguousarray(b)))
    close(CPU.global_avgpool_forward(a), REF.global_avgpool_forward(np.ascontiguousarray(a)), dtype)
    dy = uniform(shape[:2], seed + 2, dtype)
    dx = CPU.global_avgpool_backward(dy, shape)
    assert is_batch_last(dx)
    close(dx, REF.global_avgpool_backward(dy, shape), dtype)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 7), st.integers(1, 7), st.integers(1, 3),
       st.integers(1, 3), st.integers(1, 2), st.integers(0, 2), st.integers(1, 2), st.integers(0, 2**16))
def test_batch_last_col2im_equals_the_references_bit_for_bit(n, c, h, w, kh, kw, stride, pad, dil, seed):
    out_h, out_w = out_size(h, kh, stride, pad, dil), out_size(w, kw, stride, pad, dil)
    if out_h < 1 or out_w < 1:
        return
    geom = ConvGeometry(kh, kw, stride, stride, pad, pad, dil, dil, out_h, out_w)
    dcols = uniform((c * kh * kw, out_h * out_w * n), seed)
    got = col2im_batch_last(dcols, (n, c, h, w), geom)
    assert is_batch_last(got)
    ref_cols = dcols.reshape(c, kh, kw, out_h, out_w, n).transpose(0, 1, 2, 5, 3, 4)
    np.testing.assert_array_equal(got, REF.col2im(np.ascontiguousarray(ref_cols), (n, c, h, w), geom))


def test_other_layouts_take_the_references_path():
    x = uniform((2, 3, 4, 4), 0)  # batch-first memory
    assert channel_rows(x) is None and channel_rows(uniform((4, 3), 0)) is None
    y, saved = CPU.batchnorm_act_forward(x, None, None, np.zeros(3), np.ones(3), 1e-5, 0.1, "relu", x)
    y_ref, _ = REF.batchnorm_act_forward(x, None, None, np.zeros(3), np.ones(3), 1e-5, 0.1, "relu", x)
    np.testing.assert_array_equal(y, y_ref)
    assert len(act_backward(CPU, x, saved, None)) == 4


@pytest.mark.parametrize("name", ["resnet8", "resnet20"])
def test_a_resnet_on_the_cpu_keeps_one_layout_from_its_first_convolution_to_its_global_pooling(name):
    """Every step's output and input gradient between the stem convolution and global pooling is
    batch-last, so no step transposes between layouts."""
    with dn.device("cpu"):
        model = dn.models.get(name)
        x = uniform((4, 3, 16, 16), 0, np.float32)
        steps = model.steps()
        outs, grads = [], []
        for step in steps:
            x = step(x)
            outs.append(x)
        dy = uniform(x.shape, 1, np.float32)
        for step in reversed(steps[1:]):
            dy = step.backward(dy)
            grads.append(dy)
    assert all(is_batch_last(o) for o in outs[:-2]), [s.name for s, o in zip(steps, outs) if not is_batch_last(o)]
    assert all(is_batch_last(g) for g in grads[1:]), "an input gradient left the batch-last layout"
