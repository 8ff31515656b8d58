"""The CPU table's ops between the convolutions of a residual network: batch norm (with the ReLU and
the residual sum that follow it), the residual sum + ReLU, and global average pooling, all on the
batch-last layout of ops/cpu_layout.py (each channel one contiguous row of m = n*h*w values).

Batch norm works on blocks of whole channels small enough to stay in the caches (BLOCK values):
each block is read from memory once and every step of the op (statistics, normalisation, the
affine map, the residual, the ReLU) runs on it there. So training forward reads x (and the
residual) once and writes y once; backward reads dy, y, x once and writes dx (and the residual's
gradient) once: a pass over memory each, where the reference's composition makes about eight.
The forward keeps x itself for backward (no normalised copy is written); backward recomputes
x - mean per block, in the caches.

Inputs of another layout (batch-first arrays, (n, c) batch norm) take the reference's path.
The blocks are shared among cpu_workers' threads; each writes only its own channels.
"""

from __future__ import annotations

from typing import Any

import numpy

from . import cpu_workers
from .cpu_layout import channel_rows, empty_batch_last, is_batch_last, like_batch_last, relu_in_place
from .reference import ReferenceOps

#: values per block of channels (float32: 1 MiB; a block is at least one channel). 2^18 against
#: 2^15: 1-3% shorter ResNet steps (fewer NumPy calls per batch norm; RESULTS.md, issue 26 part h26c)
BLOCK = 1 << 18


class _NormSaved:
    """What the CPU's training batch norm keeps: x as (c, m) rows, the batch mean and 1/std (c,),
    the output rows when a ReLU followed (its mask), whether a residual was added, and the
    (n, c, ...) view of x (dx is laid out like it)."""

    __slots__ = ("rows", "mean", "inv_std", "y", "act", "has_residual", "like")

    def __init__(self, rows, mean, inv_std, y, act, has_residual, like):
        self.rows, self.mean, self.inv_std, self.y = rows, mean, inv_std, y
        self.act, self.has_residual, self.like = act, has_residual, like


def _blocks(c: int, m: int):
    step = max(1, BLOCK // m)
    return [slice(s, min(c, s + step)) for s in range(0, c, step)], step


def _column(v):
    return v[:, None]


#: per-channel sums as BLAS products (a product with a ones vector, row-by-row dot products)
#: instead of numpy.sum over (b, m) blocks: about 3x faster in the caches (RESULTS.md, issue 26
#: part h26c); the sums' order, so their float32 rounding, differs from numpy.sum's
BLAS_SUMS = True
_ones: dict = {}


def _row_sums(a, out) -> None:
    """out (b,) = the sums of a's rows (b, m)."""
    if not BLAS_SUMS:
        numpy.sum(a, axis=1, out=out)
        return
    m = a.shape[1]
    ones = _ones.get(a.dtype)
    if ones is None or ones.size < m:  # one buffer per dtype, as long as the longest rows yet
        ones = numpy.ones(m, dtype=a.dtype)
        ones.flags.writeable = False
        _ones[a.dtype] = ones
    numpy.matmul(a, ones[:m], out=out)


def _row_dots(a, b, scratch, out) -> None:
    """out (k,) = the dot products of a's and b's rows (k, m); scratch: a (k, m) buffer numpy.sum's
    path writes a * b into."""
    if not BLAS_SUMS:
        numpy.multiply(a, b, out=scratch)
        numpy.sum(scratch, axis=1, out=out)
        return
    numpy.matmul(a[:, None, :], b[:, :, None], out=out[:, None, None])


def _affine_act(t, scale, shift, r, act, out) -> None:
    """out = act(t * scale + shift + r) per row; t, r, out: (b, m) blocks; scale, shift: (b,)."""
    numpy.multiply(t, _column(scale), out=out)
    if shift is not None:
        numpy.add(out, _column(shift), out=out)
    if r is not None:
        numpy.add(out, r, out=out)
    if act == "relu":
        relu_in_place(out)


class CpuNormOps(ReferenceOps):
    """ReferenceOps with batch norm, residual + ReLU and global pooling on batch-last rows."""

    # --- batch norm, training ----------------------------------------------------------------

    def batchnorm_forward(self, x, weight, bias, running_mean, running_var, eps: float, momentum: float):
        """As ReferenceOps.batchnorm_forward; batch-last x gives a batch-last y."""
        if channel_rows(x) is None:
            return super().batchnorm_forward(x, weight, bias, running_mean, running_var, eps, momentum)
        return self.batchnorm_act_forward(x, weight, bias, running_mean, running_var, eps, momentum, None, None)

    def batchnorm_act_forward(self, x, weight, bias, running_mean, running_var, eps: float, momentum: float,
                              act: str | None = "relu", residual=None):
        """As ReferenceOps.batchnorm_act_forward, one pass over memory for a batch-last x (and residual)."""
        rows = channel_rows(x)
        r_rows = None if residual is None else channel_rows(residual)
        if rows is None or (residual is not None and r_rows is None):
            return super().batchnorm_act_forward(x, weight, bias, running_mean, running_var, eps, momentum, act,
                                                 residual)
        c, m = rows.shape
        dt = x.dtype.type
        y_rows, y = empty_batch_last(x.shape, x.dtype)
        mean = numpy.empty(c, dtype=x.dtype)
        var = numpy.empty(c, dtype=x.dtype)
        blocks, step = _blocks(c, m)

        def run(first: int, stop: int) -> None:
            t_buf = numpy.empty((min(c, step), m), dtype=x.dtype)
            sq_buf = numpy.empty_like(t_buf)
            for sl in blocks[first:stop]:
                xb = rows[sl]
                t, sq = t_buf[:xb.shape[0]], sq_buf[:xb.shape[0]]
                _row_sums(xb, mean[sl])
                mean[sl] *= dt(1 / m)
                numpy.subtract(xb, _column(mean[sl]), out=t)
                _row_dots(t, t, sq, var[sl])
                var[sl] *= dt(1 / m)
                inv = 1 / numpy.sqrt(var[sl] + dt(eps))
                scale = inv if weight is None else inv * weight[sl]
                _affine_act(t, scale, None if bias is None else bias[sl],
                            None if r_rows is None else r_rows[sl], act, y_rows[sl])

        cpu_workers.split(run, len(blocks))
        inv_std = 1 / numpy.sqrt(var + dt(eps))
        running_mean *= dt(1 - momentum)
        running_mean += mean * dt(momentum)
        running_var *= dt(1 - momentum)
        running_var += var * dt(momentum * m / (m - 1))
        saved = _NormSaved(rows, mean, inv_std, y_rows if act == "relu" else None, act, residual is not None, x)
        return y, saved

    def batchnorm_backward(self, dy, saved, weight, wgrad, bgrad, need_dx: bool = True):
        """As ReferenceOps.batchnorm_backward (the reference's `saved` when the forward went there)."""
        if not isinstance(saved, _NormSaved):
            return super().batchnorm_backward(dy, saved, weight, wgrad, bgrad, need_dx)
        return self.batchnorm_act_backward(dy, saved, weight, wgrad, bgrad, need_dx)[0]

    def batchnorm_act_backward(self, dy, saved, weight, wgrad, bgrad, need_dx: bool = True):
        """As ReferenceOps.batchnorm_act_backward, one pass over memory: per block of channels the
        ReLU's mask, both sums and dx = a*dz - k*(x - mean) - c0 (per-channel a, k, c0)."""
        if not isinstance(saved, _NormSaved):
            return super().batchnorm_act_backward(dy, saved, weight, wgrad, bgrad, need_dx)
        rows = saved.rows
        c, m = rows.shape
        dy_rows = channel_rows(dy)
        if dy_rows is None:  # a gradient of another layout: one copy into the layout of x
            dy_rows = numpy.empty_like(rows)
            like_batch_last(dy_rows, saved.like)[...] = dy
        dt = dy.dtype.type
        relu = saved.act == "relu"
        dres_rows: Any = None
        dres: Any = None
        if saved.has_residual:
            if relu:
                dres_rows, dres = empty_batch_last(dy.shape, dy.dtype)
            else:
                dres = like_batch_last(dy_rows, saved.like)
        dx_rows: Any = None
        dx: Any = None
        if need_dx:
            dx_rows, dx = empty_batch_last(dy.shape, dy.dtype)
        dweight = numpy.empty(c, dtype=dy.dtype)
        dbias = numpy.empty(c, dtype=dy.dtype)
        blocks, step = _blocks(c, m)

        def run(first: int, stop: int) -> None:
            t_buf = numpy.empty((min(c, step), m), dtype=dy.dtype)
            p_buf = numpy.empty_like(t_buf)
            dz_buf: Any = numpy.empty_like(t_buf) if relu and dres_rows is None else None
            mask_buf: Any = numpy.empty(t_buf.shape, dtype=bool) if relu else None
            for sl in blocks[first:stop]:
                b = sl.stop - sl.start
                t, p = t_buf[:b], p_buf[:b]
                if relu:
                    dz = dres_rows[sl] if dres_rows is not None else dz_buf[:b]
                    numpy.greater(saved.y[sl], 0, out=mask_buf[:b])
                    numpy.multiply(dy_rows[sl], mask_buf[:b], out=dz)
                else:
                    dz = dy_rows[sl]
                _row_sums(dz, dbias[sl])
                numpy.subtract(rows[sl], _column(saved.mean[sl]), out=t)  # x - mean
                _row_dots(t, dz, p, dweight[sl])
                dweight[sl] *= saved.inv_std[sl]  # sum dz * xhat
                if not need_dx:
                    continue
                # dx = a * (dz - dbias / m - xhat * dweight / m), a = weight / std, xhat = (x - mean) / std
                a = saved.inv_std[sl] if weight is None else saved.inv_std[sl] * weight[sl]
                k = a * saved.inv_std[sl] * dweight[sl] * dt(1 / m)
                c0 = a * dbias[sl] * dt(1 / m)
                out = dx_rows[sl]
                numpy.multiply(dz, _column(a), out=out)
                numpy.multiply(t, _column(k), out=t)
                numpy.subtract(out, t, out=out)
                numpy.subtract(out, _column(c0), out=out)

        cpu_workers.split(run, len(blocks))
        if wgrad is not None:
            wgrad += dweight
        if bgrad is not None:
            bgrad += dbias
        return dx, dres

    # --- batch norm, eval mode ---------------------------------------------------------------

    def batchnorm_eval(self, x, weight, bias, running_mean, running_var, eps: float):
        if channel_rows(x) is None:
            return super().batchnorm_eval(x, weight, bias, running_mean, running_var, eps)
        return self.batchnorm_act_eval(x, weight, bias, running_mean, running_var, eps, None, None)

    def batchnorm_act_eval(self, x, weight, bias, running_mean, running_var, eps: float, act: str | None = "relu",
                           residual=None):
        """As ReferenceOps.batchnorm_act_eval: act(x * scale + shift + residual), a block at a time."""
        rows = channel_rows(x)
        r_rows = None if residual is None else channel_rows(residual)
        if rows is None or (residual is not None and r_rows is None):
            return super().batchnorm_act_eval(x, weight, bias, running_mean, running_var, eps, act, residual)
        c, m = rows.shape
        dt = x.dtype.type
        scale = 1 / numpy.sqrt(running_var + dt(eps))
        if weight is not None:
            scale = scale * weight
        shift = -running_mean * scale
        if bias is not None:
            shift = shift + bias
        y_rows, y = empty_batch_last(x.shape, x.dtype)
        blocks = _blocks(c, m)[0]

        def run(first: int, stop: int) -> None:
            for sl in blocks[first:stop]:
                _affine_act(rows[sl], scale[sl], shift[sl], None if r_rows is None else r_rows[sl], act,
                            y_rows[sl])

        cpu_workers.split(run, len(blocks))
        return y

    # --- residual sum + ReLU, global average pooling -----------------------------------------

    def add_relu_forward(self, a, b):
        """relu(a + b) in one new array laid out as a (NumPy's order="K"), the ReLU in place."""
        y = numpy.add(a, b)
        relu_in_place(y)
        return y

    def global_avgpool_forward(self, x):
        """As ReferenceOps.global_avgpool_forward: (n, c, h, w) -> (n, c); a batch-last x is
        summed over its contiguous rows of n values."""
        if x.ndim != 4 or not is_batch_last(x):
            return super().global_avgpool_forward(x)
        n, c, h, w = x.shape
        total = channel_rows(x).reshape(c, h * w, n).sum(axis=1)
        total /= x.dtype.type(h * w)
        return numpy.ascontiguousarray(total.T)

    def global_avgpool_backward(self, dy, x_shape):
        """As ReferenceOps.global_avgpool_backward, dx with batch-last memory (the layout of the
        convolutions before it)."""
        n, c, h, w = x_shape
        share = dy.T / dy.dtype.type(h * w)  # (c, n)
        buf = numpy.empty((c, h * w, n), dtype=dy.dtype)
        buf[...] = share[:, None, :]
        return buf.reshape(c, h, w, n).transpose(3, 0, 1, 2)
