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
       seed=st.integers(0, 2**16))
def test_convolution_by_row_blocks_agrees_with_the_reference_for_any_block_size(g, dtype, bias, act, need_dx, block,
                                                                               seed):
    if g["groups"] != 1:  # grouped convolutions take the reference's path
        return
    x = uniform((g["n"], g["c"], g["h"], g["w"]), seed, dtype)
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


def test_row_blocks_cover_every_output_row_once_and_hold_about_the_block_size():
    geom = ConvGeometry(3, 3, 1, 1, 1, 1, 1, 1, 32, 32)
    for block, k, n in ((1, 144, 64), (1 << 18, 144, 64), (1 << 18, 576, 1), (10**9, 9, 2)):
        with cols_block(block):
            blocks = cpu_conv.row_blocks(geom, k, n)
        assert [r for a, b in blocks for r in range(a, b)] == list(range(32))
        rows = blocks[0][1] - blocks[0][0]
        assert rows == 1 or rows * k * 32 * n <= block
