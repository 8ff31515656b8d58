"""The CPU table's activation layout: batch-last memory behind the (n, c, h, w) shape every caller sees.

CpuOps' convolutions write their outputs as (c, h, w, n) buffers and hand out the (n, c, h, w)
transposed view (ops/cpu.py); batch norm, ReLU, residual sums and global pooling (ops/cpu_norm.py)
keep that memory order, so a residual network runs from its first convolution to its global
pooling without a transpose. Ops check the layout by strides at entry (`channel_rows`), so any
input layout stays correct: an array of another layout takes the reference's path.
"""

from __future__ import annotations

import numpy
from numpy.lib.stride_tricks import as_strided


def batch_last(x):
    """(n, c, h, w) array -> (c, h, w, n) view; contiguous when x came from a CpuOps op."""
    return x.transpose(1, 2, 3, 0)


def batch_first(x):
    """(c, h, w, n) array -> the (n, c, h, w) view every caller expects."""
    return x.transpose(3, 0, 1, 2)


def is_batch_last(x) -> bool:
    """Whether x (n, c, ...) has batch-last memory: its (c, ..., n) transpose is C-contiguous."""
    return x.ndim >= 2 and numpy.moveaxis(x, 0, -1).flags.c_contiguous


def channel_rows(x):
    """x (n, c, ...) with batch-last memory -> its (c, m) view (m = x.size / c: every value of a
    channel in one contiguous row), else None (the caller takes the reference's path)."""
    if x.ndim < 3 or not is_batch_last(x):  # (n, c) batch norm keeps the reference's path
        return None
    return numpy.moveaxis(x, 0, -1).reshape(x.shape[1], -1)


def empty_batch_last(shape, dtype):
    """(rows (c, m) buffer, the (n, c, ...) view of it): a new activation in the CPU layout."""
    n, c, *inner = shape
    buf = numpy.empty((c, *inner, n), dtype=dtype)
    return buf.reshape(c, -1), numpy.moveaxis(buf, -1, 0)


def like_batch_last(rows, x):
    """The (n, c, ...) view of rows (c, m) laid out as x (n, c, ...) with batch-last memory."""
    n, c, *inner = x.shape
    return numpy.moveaxis(rows.reshape(c, *inner, n), -1, 0)


def window_slices(geom, i: int, j: int):
    """Input rows and columns (of the padded input) that kernel offset (i, j) reads, over every output."""
    y0, x0 = i * geom.dh, j * geom.dw
    return (slice(y0, y0 + geom.sh * (geom.out_h - 1) + 1, geom.sh),
            slice(x0, x0 + geom.sw * (geom.out_w - 1) + 1, geom.sw))


def clipped(size: int, a: int, b: int, k_off: int, stride: int, pad: int) -> tuple[slice, slice]:
    """Along one axis, for one kernel offset k_off (already times the dilation): (the slice of the
    outputs o in [a, b) whose tap o * stride - pad + k_off lies inside the input [0, size), the
    input slice those taps land on); empty slices when none does."""
    lo = max(a, -(-(pad - k_off) // stride))
    hi = min(b, (size - 1 + pad - k_off) // stride + 1)
    if hi <= lo:
        return slice(0, 0), slice(0, 0)
    first = lo * stride - pad + k_off
    return slice(lo, hi), slice(first, first + (hi - lo - 1) * stride + 1, stride)


def window_view(padded, geom):
    """padded (c, H, W, n) -> read-only view (c, kh, kw, out_h, out_w, n) of every kernel offset's
    window: im2col as one copy (one NumPy call instead of kh*kw, the same bytes moved)."""
    kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w = geom
    c, _, _, n = padded.shape
    s_c, s_h, s_w, s_n = padded.strides
    return as_strided(padded, shape=(c, kh, kw, out_h, out_w, n),
                      strides=(s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w, s_n), writeable=False)


def col2im_batch_last(dcols, x_shape, geom):
    """Adjoint of im2col: dcols (c*kh*kw, out_h*out_w*n) -> dx (n, c, h, w) with contiguous
    batch-last memory. Each offset adds its window straight into the unpadded result (the taps
    that land in padding are skipped), so no padded buffer is filled, cropped or copied."""
    kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w = geom
    n, c, h, w = x_shape
    windows = dcols.reshape(c, kh, kw, out_h, out_w, n)
    dx = numpy.zeros((c, h, w, n), dtype=dcols.dtype)
    for i in range(kh):
        oy, iy = clipped(h, 0, out_h, i * dh, sh, ph)
        for j in range(kw):
            ox, ix = clipped(w, 0, out_w, j * dw, sw, pw)
            if oy.stop > oy.start and ox.stop > ox.start:
                dx[:, iy, ix] += windows[:, i, j, oy, ox]
    return batch_first(dx)


#: length of the zero row relu_in_place compares against
ZERO_ROW = 4096
_zero_rows: dict = {}


def _zero_row(length: int, dtype):
    """A read-only row of `length` (<= ZERO_ROW) zeros of dtype, one buffer per dtype."""
    key = numpy.dtype(dtype)
    row = _zero_rows.get(key)
    if row is None:
        row = numpy.zeros(ZERO_ROW, dtype=key)
        row.flags.writeable = False
        _zero_rows[key] = row
    return row[:length]


def relu_in_place(a) -> None:
    """a = maximum(a, 0) in place, the same values (a NaN stays NaN). A C-contiguous a is compared
    against a row of zeros over its (size / ZERO_ROW, ZERO_ROW) view: NumPy 2.4's maximum with a
    scalar operand runs 3-5x slower than with an array operand (20 against 4 us per 65,536
    float32 in the caches; RESULTS.md, issue 26 part h26c). Other layouts take the scalar."""
    if not a.flags.c_contiguous or a.size < ZERO_ROW:
        numpy.maximum(a, 0, out=a)
        return
    flat = a.reshape(-1)
    whole = flat.size - flat.size % ZERO_ROW
    rows = flat[:whole].reshape(-1, ZERO_ROW)
    numpy.maximum(rows, _zero_row(ZERO_ROW, a.dtype), out=rows)
    if whole < flat.size:
        numpy.maximum(flat[whole:], _zero_row(flat.size - whole, a.dtype), out=flat[whole:])
