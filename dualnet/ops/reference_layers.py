"""The reference ops of the real-model layers: softmax along an axis, 2-D padding, upsampling,
transposed convolution, and batch norm's eval-mode gradient. ReferenceOps inherits them; like the
rest of the reference they are written against `self.xp` (see ops/reference.py for the contract).

Padding and upsampling are linear maps that act on rows and columns separately: output row r
reads input row src[r] (padding; -1 for a constant fill) or a weighted pair of rows
(upsampling). The reference writes each as a gather along each axis, and its backward as the
transposed map (a small dense (in, out) matrix per axis, so the adjoint is plainly the transpose).
"""

from __future__ import annotations

import math
from typing import Any

import numpy

#: padding modes, in the order of the kernels' `mode` argument (kernels/pad.cu)
PAD_MODES = ("constant", "reflect", "replicate")
#: upsampling modes, in the order of the kernels' `mode` argument (kernels/upsample.cu)
UPSAMPLE_MODES = ("nearest", "bilinear")


def pad_source(size: int, before: int, after: int, mode: str) -> numpy.ndarray:
    """Input index each output position reads along one axis (int64, length size + before + after);
    -1 where a constant pad writes its value. before/after < 0 crop (constant mode only)."""
    pos = numpy.arange(size + before + after, dtype=numpy.int64) - before
    if mode == "constant":
        return numpy.where((pos >= 0) & (pos < size), pos, -1)
    if mode == "reflect":  # mirror about the edge element, which is not repeated
        period = 2 * (size - 1)
        pos = numpy.abs(pos) % period if period else numpy.zeros_like(pos)
        return numpy.where(pos >= size, period - pos, pos)
    return numpy.clip(pos, 0, size - 1)  # replicate


def upsample_source(size: int, out: int, scale: float | None, mode: str, align_corners: bool
                    ) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Along one axis: (i0, i1, lam) with output o = (1 - lam[o]) * x[i0[o]] + lam[o] * x[i1[o]].

    PyTorch's rules: `scale` is the user's scale factor when one was given (the source coordinate
    uses 1 / scale, not size / out), else None. Nearest: i0 = i1 = min(floor(o * ratio), size - 1),
    lam = 0. Bilinear, align_corners: src = o * (size - 1) / (out - 1); otherwise src = (o + 0.5) *
    ratio - 0.5 clamped at 0; i0 = floor(src), i1 = min(i0 + 1, size - 1), lam = src - i0.
    """
    o = numpy.arange(out, dtype=numpy.float64)
    ratio = 1.0 / scale if scale else size / out
    if mode == "nearest":
        i0 = numpy.minimum(numpy.floor(o * ratio).astype(numpy.int64), size - 1)
        return i0, i0, numpy.zeros(out)
    if align_corners:
        src = o * ((size - 1) / (out - 1)) if out > 1 else numpy.zeros(out)
    else:
        src = numpy.maximum((o + 0.5) * ratio - 0.5, 0.0)
    i0 = numpy.minimum(numpy.floor(src).astype(numpy.int64), size - 1)
    i1 = numpy.minimum(i0 + 1, size - 1)
    return i0, i1, src - i0


def _axis_matrix(size: int, i0: Any, i1: Any, lam: Any) -> numpy.ndarray:
    """The (size, out) matrix M of a per-axis map: output o = sum_i M[i, o] * x[i]."""
    out = len(i0)
    m = numpy.zeros((size, out))
    cols = numpy.arange(out)
    keep = i0 >= 0
    numpy.add.at(m, (i0[keep], cols[keep]), (1 - lam)[keep])
    numpy.add.at(m, (i1[keep], cols[keep]), lam[keep])
    return m


class LayerOps:
    """Real-model layer ops of the reference table."""

    xp: Any

    def col2im(self, cols: Any, x_shape: tuple[int, int, int, int], geom: Any) -> Any:
        raise NotImplementedError  # pragma: no cover - ReferenceOps defines it

    # --- softmax along an axis -----------------------------------------------------------

    def softmax_forward(self, x, dim: int, log: bool):
        """Softmax (log=False) or log-softmax of x along axis `dim`, the row maximum subtracted
        first so no exponential overflows; y like x."""
        xp = self.xp
        shifted = x - x.max(axis=dim, keepdims=True)
        e = xp.exp(shifted)
        s = e.sum(axis=dim, keepdims=True)
        return shifted - xp.log(s) if log else e / s

    def softmax_backward(self, dy, y, dim: int, log: bool):
        """dL/dx from the output y: softmax y * (dy - sum(dy * y)); log-softmax dy - exp(y) * sum(dy)."""
        xp = self.xp
        if log:
            return dy - xp.exp(y) * dy.sum(axis=dim, keepdims=True)
        return y * (dy - (dy * y).sum(axis=dim, keepdims=True))

    # --- 2-D padding ---------------------------------------------------------------------

    def pad2d_forward(self, x, pads: tuple[int, int, int, int], mode: str, value: float = 0.0):
        """x: (n, c, h, w) -> (n, c, h + top + bottom, w + left + right); pads = (left, right,
        top, bottom); mode in PAD_MODES; `value` fills a constant pad."""
        xp = self.xp
        left, right, top, bottom = pads
        h, w = x.shape[2], x.shape[3]
        rows, cols = pad_source(h, top, bottom, mode), pad_source(w, left, right, mode)
        y = x[:, :, xp.asarray(numpy.maximum(rows, 0))][:, :, :, xp.asarray(numpy.maximum(cols, 0))]
        if mode == "constant":
            inside = xp.asarray((rows >= 0)[:, None] & (cols >= 0)[None, :])
            y = xp.where(inside, y, x.dtype.type(value))
        return xp.ascontiguousarray(y)

    def pad2d_backward(self, dy, x_shape: tuple[int, int, int, int], pads: tuple[int, int, int, int], mode: str):
        """The adjoint of pad2d_forward: each input element sums the outputs that read it."""
        xp = self.xp
        left, right, top, bottom = pads
        h, w = x_shape[2], x_shape[3]
        rows, cols = pad_source(h, top, bottom, mode), pad_source(w, left, right, mode)
        zero = numpy.zeros(len(rows))
        mr = xp.asarray(_axis_matrix(h, rows, rows, zero).astype(dy.dtype))
        mc = xp.asarray(_axis_matrix(w, cols, cols, numpy.zeros(len(cols))).astype(dy.dtype))
        return xp.ascontiguousarray(xp.matmul(xp.matmul(mr, dy), mc.T))

    # --- upsampling ----------------------------------------------------------------------

    def upsample_forward(self, x, out_hw: tuple[int, int], scale: tuple[float | None, float | None], mode: str,
                         align_corners: bool):
        """x: (n, c, h, w) -> (n, c, out_h, out_w), nearest or bilinear (see upsample_source)."""
        xp = self.xp
        h, w = x.shape[2], x.shape[3]
        mr, mc = self._upsample_matrices(h, w, out_hw, scale, mode, align_corners, x.dtype)
        return xp.ascontiguousarray(xp.matmul(xp.matmul(mr.T, x), mc))

    def upsample_backward(self, dy, x_shape: tuple[int, int, int, int], scale: tuple[float | None, float | None],
                          mode: str, align_corners: bool):
        """The adjoint of upsample_forward: dy (n, c, out_h, out_w) -> dx (n, c, h, w)."""
        xp = self.xp
        h, w = x_shape[2], x_shape[3]
        mr, mc = self._upsample_matrices(h, w, tuple(dy.shape[2:]), scale, mode, align_corners, dy.dtype)
        return xp.ascontiguousarray(xp.matmul(xp.matmul(mr, dy), mc.T))

    def _upsample_matrices(self, h: int, w: int, out_hw: Any, scale: Any, mode: str, align_corners: bool,
                           dtype: Any) -> tuple[Any, Any]:
        out_h, out_w = out_hw
        mr = _axis_matrix(h, *upsample_source(h, out_h, scale[0], mode, align_corners))
        mc = _axis_matrix(w, *upsample_source(w, out_w, scale[1], mode, align_corners))
        return self.xp.asarray(mr.astype(dtype)), self.xp.asarray(mc.astype(dtype))

    # --- the convolution's input gradient (ConvTranspose2d's forward) ---------------------

    def conv2d_input_grad(self, dy, weight, x_shape: tuple[int, int, int, int], geom: Any, groups: int):
        """dL/dx of conv2d_forward: dy (n, o, out_h, out_w), weight (o, c/g, kh, kw) -> (n, c, h, w):
        the transposed weights times dy, then col2im. It is also the forward of the transposed
        convolution, whose input is dy and whose output is x-shaped."""
        xp = self.xp
        n, c = x_shape[0], x_shape[1]
        o = weight.shape[0]
        k = (c // groups) * geom.kh * geom.kw
        g_dy = xp.ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(groups, o // groups, n * geom.out_h * geom.out_w)
        g_w = weight.reshape(groups, o // groups, k)
        dcols = xp.matmul(g_w.transpose(0, 2, 1), g_dy).reshape(c, geom.kh, geom.kw, n, geom.out_h, geom.out_w)
        return self.col2im(dcols, x_shape, geom)

    # --- batch norm's eval-mode gradient -------------------------------------------------

    def batchnorm_eval_backward(self, dy, x, weight, running_mean, running_var, eps: float, wgrad, bgrad,
                                need_dx: bool = True):
        """Gradient of batchnorm_eval (the running statistics held constant): dy like x -> dx like x
        or None, dx = dy * weight / sqrt(running_var + eps); adds dweight = sum dy * (x - running_mean)
        / sqrt(running_var + eps) into wgrad and dbias = sum dy into bgrad (each None: not wanted)."""
        xp = self.xp
        axes = (0, *range(2, dy.ndim))
        per_channel = (1, -1) + (1,) * (dy.ndim - 2)
        inv_std = 1 / xp.sqrt(running_var + dy.dtype.type(eps))
        dbias = dy.sum(axis=axes)
        dweight = (dy * (x - running_mean.reshape(per_channel))).sum(axis=axes) * inv_std
        if wgrad is not None:
            wgrad += dweight
        if bgrad is not None:
            bgrad += dbias
        if not need_dx:
            return None
        scale = inv_std if weight is None else inv_std * weight
        return dy * scale.reshape(per_channel)


def out_len(size: int, scale: float | None, out: int | None) -> int:
    """Upsampled length: `out` when given, else floor(size * scale) (PyTorch's rule)."""
    return int(out) if out is not None else int(math.floor(size * float(scale or 1.0)))
