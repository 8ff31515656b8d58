"""The CPU table's convolution by blocks of output rows (ops/cpu_conv.py) computes what the
reference computes for any block size, so every block boundary (a block of one row, blocks that
split the padding rows, a last block shorter than the others) is exercised, and its outputs and
input gradients keep the batch-last layout."""

from __future__ import annotations

import contextlib

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from dualnet.ops import cpu_conv
from dualnet.ops.cpu import CpuOps
from dualnet.ops.cpu_layout import is_batch_last
from dualnet.ops.geometry import ConvGeometry
from dualnet.ops.reference import ReferenceOps
from dualnet.testing import conv_geometries, param_grads, uniform

REF = ReferenceOps()
CPU = CpuOps()


@contextlib.contextmanager
def cols_block(values: int):
    """cpu_conv.COLS_BLOCK set to `values` inside, restored afterwards."""
    before, cpu_conv.COLS_BLOCK = cpu_conv.COLS_BLOCK, values
    try:
        yield
    finally:
        cpu_conv.COLS_BLOCK = before


@given(g=conv_geometries(), dtype=st.sampled_from([np.float64, np.float32]), bias=st.booleans(),
       act=st.sampled_from([None, "relu"]), need_dx=st.booleans(), block=st.sampled_from([1, 40, 300, 1 << 18]),
       batch_last_x=st.booleans(), seed=st.integers(0, 2**16))
def test_convolution_by_row_blocks_agrees_with_the_reference_for_any_block_size(g, dtype, bias, act, need_dx, block,
                                                                               batch_last_x, seed):
    """batch_last_x: the input in the CPU layout (as between a ResNet's layers), where a stride-1
    convolution's weight gradient comes from the input gradient's columns (cpu_conv.FUSED_WEIGHT_GRAD)."""
    if g["groups"] != 1:  # grouped convolutions take the reference's path
        return
    x = uniform((g["n"], g["c"], g["h"], g["w"]), seed, dtype)
    if batch_last_x:
        x = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    w = uniform((g["out_channels"], g["c"], *g["kernel_size"]), seed + 1, dtype)
    b = uniform((g["out_channels"],), seed + 2, dtype) if bias else None
    dy = uniform((g["n"], g["out_channels"], g["out_h"], g["out_w"]), seed + 3, dtype)
    geom = g["geom"]
    y_ref, cols_ref = REF.conv2d_forward(x, w, b, geom, 1, act)
    with cols_block(block):
        y, saved = CPU.conv2d_forward(x, w, b, geom, 1, act)
    assert isinstance(saved, cpu_conv.ConvInput) and is_batch_last(y)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y, y_ref, **tol)
    nb = g["out_channels"] if bias else None
    ref = param_grads(REF.conv2d_backward, dy, cols_ref, w, x.shape, geom, 1, weight_shape=w.shape, bias=nb,
                      dtype=dtype, need_dx=need_dx)
    with cols_block(block):
        got = param_grads(CPU.conv2d_backward, dy, saved, w, x.shape, geom, 1, weight_shape=w.shape, bias=nb,
                          dtype=dtype, need_dx=need_dx)
    for name, a, r in zip(("dx", "dweight", "dbias"), got, ref, strict=True):
        assert (a is None) == (r is None), name
        if r is not None:
            np.testing.assert_allclose(a, r, err_msg=name, **tol)
    assert got[0] is None or is_batch_last(got[0])


@given(shape=st.sampled_from([(3, 3, 1, 1), (1, 1, 0, 0), (3, 3, 0, 0), (5, 3, 2, 1), (3, 5, 0, 2), (2, 2, 1, 0)]),
       n=st.integers(1, 5), c=st.integers(1, 4), o=st.integers(1, 4),
       hw=st.tuples(st.integers(5, 9), st.integers(5, 9)), block=st.sampled_from([1, 40, 300, 1 << 18]),
       seed=st.integers(0, 2**16))
def test_weight_gradient_from_the_input_gradients_columns_agrees_with_the_reference(shape, n, c, o, hw, block, seed):
    """A stride-1 convolution of a batch-last input (no bias) takes its weight gradient from the
    columns of the padded dy that its input gradient is convolved from (cpu_conv.FUSED_WEIGHT_GRAD)."""
    kh, kw, ph, pw = shape
    h, w = hw
    geom = ConvGeometry.of(h, w, (kh, kw), (1, 1), (ph, pw), (1, 1))
    x = np.ascontiguousarray(uniform((c, h, w, n), seed, np.float64)).transpose(3, 0, 1, 2)
    wt = uniform((o, c, kh, kw), seed + 1, np.float64)
    dy = uniform((n, o, geom.out_h, geom.out_w), seed + 3, np.float64)
    _, cols_ref = REF.conv2d_forward(x, wt, None, geom, 1)
    ref = param_grads(REF.conv2d_backward, dy, cols_ref, wt, x.shape, geom, 1, weight_shape=wt.shape, bias=None,
                      dtype=np.float64, need_dx=True)
    with cols_block(block):
        _, saved = CPU.conv2d_forward(x, wt, None, geom, 1)
        assert saved.x_rows is not None and cpu_conv._transposed_geometry(geom, h, w) is not None
        got = param_grads(CPU.conv2d_backward, dy, saved, wt, x.shape, geom, 1, weight_shape=wt.shape, bias=None,
                          dtype=np.float64, need_dx=True)
    for name, a, r in zip(("dx", "dweight"), got, ref):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12, err_msg=name)


def test_row_blocks_cover_every_output_row_once_and_hold_about_the_block_size():
    geom = ConvGeometry(3, 3, 1, 1, 1, 1, 1, 1, 32, 32)
    for block, k, n in ((1, 144, 64), (1 << 18, 144, 64), (1 << 18, 576, 1), (10**9, 9, 2)):
        with cols_block(block):
            blocks = cpu_conv.row_blocks(geom, k, n)
        assert [r for a, b in blocks for r in range(a, b)] == list(range(32))
        rows = blocks[0][1] - blocks[0][0]
        assert rows == 1 or rows * k * 32 * n <= block
