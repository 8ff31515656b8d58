"""The CPU table's convolution by blocks of output rows: im2col, the products and col2im run one
cache-sized block of columns at a time, and the whole cols matrix is never built.

A 3x3 convolution's cols are kh*kw times its input: for a ResNet's first stage at batch 64 (16
channels of 32x32) that is 38 MB against the input's 4 MB, so building them, keeping them for
backward and writing the input gradient's columns before col2im each stream tens of megabytes
through memory. Here a block of output rows gets its columns (COLS_BLOCK values, in the caches),
its share of the product and, in backward, its share of the weight gradient and of dx; forward
keeps only the padded batch-last input (and a reference to the unpadded one), from which backward
rebuilds each block's columns. A stride-1 convolution's backward builds only the columns of the
zero-padded dy: its dx is their product with the flipped weights (a transposed convolution) and
its weight gradient their product with the unpadded input (_input_grad_transposed).
Layouts are ops/cpu.py's: x (c, H, W, n) padded batch-last, cols (c*kh*kw, rows*out_w*n).
"""

from __future__ import annotations

import numpy

from . import cpu_workers
from .cpu_layout import batch_first, clipped, relu_in_place, window_view

#: values per block of columns (float32: 1 MiB); a block is at least one output row
COLS_BLOCK = 1 << 18


class ConvInput:
    """What a blocked convolution keeps for backward: the padded batch-last input (c, H, W, n),
    the unpadded input's (n, c, h, w), whether a bias rode along, and the unpadded input itself
    as a contiguous (c, h, w, n) array when it was one (a reference, no copy; else None)."""

    __slots__ = ("padded", "x_shape", "has_bias", "x_rows")

    def __init__(self, padded, x_shape, has_bias: bool, x_rows=None):
        self.padded, self.x_shape, self.has_bias, self.x_rows = padded, x_shape, has_bias, x_rows


def row_blocks(geom, k: int, n: int) -> list[tuple[int, int]]:
    """[start, stop) ranges of output rows whose columns hold about COLS_BLOCK values."""
    rows = max(1, COLS_BLOCK // max(1, k * geom.out_w * n))
    return [(a, min(geom.out_h, a + rows)) for a in range(0, geom.out_h, rows)]


#: extra values at the end of each row of a block of columns: a block's row length (out_w*n
#: values per output row) is a multiple of 4 KiB in every ResNet stage at batch 64, and OpenBLAS
#: reads those rows (while packing) at conflicting cache addresses: 16 more values made a
#: first-stage forward 1.7x faster (RESULTS.md, issue 26 part h26c); the arithmetic is the same
ROW_PAD = 16


def _cols_buffer(k: int, rows: int, out_w: int, n: int, dtype):
    """(k, rows*out_w*n + ROW_PAD) buffer for the columns of up to `rows` output rows."""
    return numpy.empty((k, rows * out_w * n + ROW_PAD), dtype=dtype)


def _fill(buf, windows, a: int, b: int, k: int, bias_row: bool):
    """The columns of output rows [a, b): buf's (k [+1], (b - a)*out_w*n) leading part, a view
    with buf's padded row stride."""
    c, kh, kw, _, out_w, n = windows.shape
    cols = buf[:k + bias_row, :(b - a) * out_w * n]
    numpy.copyto(cols[:k].reshape(c, kh, kw, b - a, out_w, n), windows[:, :, :, a:b])
    if bias_row:
        cols[k] = 1
    return cols


def forward(padded, x_shape, wmat, geom, act: str | None, has_bias: bool, x_rows=None):
    """padded (c, H, W, n), wmat (o, k [+1 bias column]) -> (y (n, o, out_h, out_w) view of a
    batch-last buffer, ConvInput); x_rows: the unpadded input as (c, h, w, n), if contiguous."""
    y = _convolve(padded, wmat, geom, has_bias)
    if act == "relu":
        relu_in_place(y)
    return batch_first(y), ConvInput(padded, tuple(x_shape), has_bias, x_rows)


def _convolve(padded, wmat, geom, has_bias: bool, x_rows=None, grads_t=None):
    """y (o, out_h, out_w, n) = wmat @ the columns of padded (c, H, W, n), a block of output rows
    at a time. With x_rows (c', out_h, out_w, n) and grads_t (k, c'), each block's columns also
    give grads_t += cols @ x_rows' block.T while they are in the caches (the weight gradient of
    the convolution whose input gradient this is: _input_grad_transposed). The blocks are shared
    among cpu_workers' threads; grads_t gets their parts added in block order, for any count."""
    c, n = padded.shape[0], padded.shape[3]
    k = c * geom.kh * geom.kw
    o = wmat.shape[0]
    y = numpy.empty((o, geom.out_h, geom.out_w, n), dtype=padded.dtype)
    windows = window_view(padded, geom)
    blocks = row_blocks(geom, k, n)
    rows = blocks[0][1] - blocks[0][0]
    fuse = x_rows is not None and grads_t is not None
    parts: list = [None] * len(blocks)

    def run(first: int, stop: int) -> None:
        buf = _cols_buffer(k + has_bias, rows, geom.out_w, n, padded.dtype)
        for i in range(first, stop):
            a, b = blocks[i]
            cols = _fill(buf, windows, a, b, k, has_bias)
            numpy.matmul(wmat, cols, out=y[:, a:b].reshape(o, -1))
            if fuse:
                parts[i] = cols @ x_rows[:, a:b].reshape(x_rows.shape[0], -1).T

    cpu_workers.split(run, len(blocks))
    if fuse:
        for part in parts:
            grads_t += part
    return y


def backward(dy_rows, saved: ConvInput, wmat, geom, need_dx: bool):
    """dy_rows (o, out_h, out_w, n) -> (dx (n, c, h, w) view of a batch-last buffer or None,
    grads (o, k [+1]): the weight gradient, the bias's as its last column)."""
    padded = saved.padded
    kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w = geom
    c, n = padded.shape[0], padded.shape[3]
    h, w = saved.x_shape[2], saved.x_shape[3]
    k = c * kh * kw
    o = wmat.shape[0]
    transposed = _transposed_geometry(geom, h, w) if need_dx and TRANSPOSED_INPUT_GRAD else None
    if transposed is not None and saved.x_rows is not None and not saved.has_bias and FUSED_WEIGHT_GRAD:
        return _input_grad_transposed(dy_rows, wmat, geom, transposed, c, h, w, saved.x_rows)
    windows = window_view(padded, geom)
    blocks = row_blocks(geom, k, n)
    rows = blocks[0][1] - blocks[0][0]
    buf = _cols_buffer(k + saved.has_bias, rows, out_w, n, padded.dtype)
    scatter = need_dx and transposed is None
    dbuf = numpy.empty(k * rows * out_w * n, dtype=padded.dtype) if scatter else None
    # the weight gradient as cols @ dy.T, (k [+1], o): OpenBLAS runs this orientation of the
    # long-sum product about twice as fast as dy @ cols.T (RESULTS.md, issue 26 part h26c)
    grads_t = numpy.zeros((k + saved.has_bias, o), dtype=padded.dtype)
    part = numpy.empty_like(grads_t)
    dx = numpy.zeros((c, h, w, n), dtype=padded.dtype) if scatter else None
    w_t = wmat[:, :k].T
    for a, b in blocks:
        cols = _fill(buf, windows, a, b, k, saved.has_bias)
        dyb = dy_rows[:, a:b].reshape(o, -1)
        numpy.matmul(cols, dyb.T, out=part)
        grads_t += part
        if dx is None or dbuf is None:
            continue
        dcols = dbuf[:k * (b - a) * out_w * n].reshape(k, -1)
        numpy.matmul(w_t, dyb, out=dcols)
        win = dcols.reshape(c, kh, kw, b - a, out_w, n)
        for i in range(kh):
            oy, iy = clipped(h, a, b, i * dh, sh, ph)
            if oy.stop <= oy.start:
                continue
            for j in range(kw):
                ox, ix = clipped(w, 0, out_w, j * dw, sw, pw)
                if ox.stop > ox.start:
                    dx[:, iy, ix] += win[:, i, j, oy.start - a:oy.stop - a, ox]
    grads = grads_t.T
    if transposed is not None:
        return _input_grad_transposed(dy_rows, wmat[:, :k], geom, transposed, c, h, w)[0], grads
    return (None if dx is None else batch_first(dx)), grads


#: a stride-1 convolution's input gradient as the transposed convolution (dy padded, convolved
#: with the flipped weights: no columns of dx to scatter back) instead of dcols + col2im's adds
TRANSPOSED_INPUT_GRAD = True
#: with it, the weight gradient from the same columns of the padded dy (no second im2col of x)
FUSED_WEIGHT_GRAD = True


def _transposed_geometry(geom, h: int, w: int):
    """The geometry that convolves the padded dy into dx for a stride-1, undilated convolution
    whose padding is below the kernel (else None): the kernel's size, padding kh-1-ph leading,
    output (h, w)."""
    kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w = geom
    big_h, big_w = geom.padded_hw(h, w)
    pads = (kh - 1 - ph, kw - 1 - pw, kh - 1 - (big_h - h - ph), kw - 1 - (big_w - w - pw))
    if (sh, sw, dh, dw) != (1, 1, 1, 1) or min(pads) < 0:
        return None
    return geom._replace(ph=pads[0], pw=pads[1], out_h=h, out_w=w)


def _input_grad_transposed(dy_rows, wmat, geom, tgeom, c: int, h: int, w: int, x_rows=None):
    """(dx (n, c, h, w), batch-last; the weight gradient (o, c*kh*kw) when x_rows is given, else
    None): dy_rows (o, out_h, out_w, n) zero-padded to (h + kh - 1, w + kw - 1), then convolved
    with the weights flipped in both kernel axes and transposed to (c, o*kh*kw); dx[iy] gathers
    dy[iy + ph - i] * w[i], which is what col2im adds up. The same columns of the padded dy give
    the weight gradient: dw[o, c, i, j] = sum over (iy, ix, n) of x[c, iy, ix, n] times the
    column row (o, kh-1-i, kw-1-j) at (iy, ix, n), so the input's columns need not be rebuilt."""
    kh, kw, out_h, out_w = geom.kh, geom.kw, geom.out_h, geom.out_w
    o, n = dy_rows.shape[0], dy_rows.shape[3]
    top, left = tgeom.ph, tgeom.pw
    padded = numpy.zeros((o, h + kh - 1, w + kw - 1, n), dtype=dy_rows.dtype)
    padded[:, top:top + out_h, left:left + out_w] = dy_rows
    flipped = wmat.reshape(o, c, kh, kw)[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(c, -1)
    if x_rows is None:
        return batch_first(_convolve(padded, flipped, tgeom, False)), None
    g = numpy.zeros((o * kh * kw, c), dtype=dy_rows.dtype)
    dx = _convolve(padded, flipped, tgeom, False, x_rows, g)
    grads = g.reshape(o, kh, kw, c)[:, ::-1, ::-1].transpose(0, 3, 1, 2).reshape(o, -1)
    return batch_first(dx), grads
