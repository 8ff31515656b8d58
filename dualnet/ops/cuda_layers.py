"""Kernel-backed ops of the real-model layers (softmax.cu, pad.cu, upsample.cu), mixed into CupyOps.

Upsampling's source indices and weights are built on the host by the reference's own function
(reference_layers.upsample_source) and handed to the kernels as small per-axis tables, so every
device reads the same input positions whatever its floating-point rounding of the scale.
"""

from __future__ import annotations

from typing import Any

import numpy

from .reference_layers import PAD_MODES, UPSAMPLE_MODES, upsample_source


def _rows(shape: tuple[int, ...], dim: int) -> tuple[int, int, int]:
    """(outer, k, inner) of a C-contiguous array of `shape` seen along axis `dim`."""
    outer = int(numpy.prod(shape[:dim], dtype=numpy.int64))
    inner = int(numpy.prod(shape[dim + 1:], dtype=numpy.int64))
    return outer, int(shape[dim]), inner


class LayerKernelOps:
    """Overrides of reference_layers.LayerOps with kernels; needs CupyOps's xp, launcher and _c."""

    xp: Any
    launcher: Any

    def _c(self, a: Any) -> Any:  # pragma: no cover - CupyOps defines it
        raise NotImplementedError

    def softmax_forward(self, x, dim: int, log: bool):
        x = self._c(x)
        y = self.xp.empty_like(x)
        self.launcher.launch("softmax_forward", x.dtype, x, y, *_rows(tuple(x.shape), dim), int(log))
        return y

    def softmax_backward(self, dy, y, dim: int, log: bool):
        dy, y = self._c(dy), self._c(y)
        dx = self.xp.empty_like(dy)
        self.launcher.launch("softmax_backward", dy.dtype, dy, y, dx, *_rows(tuple(dy.shape), dim), int(log))
        return dx

    def pad2d_forward(self, x, pads: tuple[int, int, int, int], mode: str, value: float = 0.0):
        x = self._c(x)
        n, c, h, w = x.shape
        left, right, top, bottom = pads
        y = self.xp.empty((n, c, h + top + bottom, w + left + right), dtype=x.dtype)
        self.launcher.launch("pad2d_forward", x.dtype, x, y, n, c, h, w, y.shape[2], y.shape[3], top, left,
                             PAD_MODES.index(mode), float(value))
        return y

    def pad2d_backward(self, dy, x_shape: tuple[int, int, int, int], pads: tuple[int, int, int, int], mode: str):
        dy = self._c(dy)
        n, c, h, w = x_shape
        dx = self.xp.empty(x_shape, dtype=dy.dtype)
        self.launcher.launch("pad2d_backward", dy.dtype, dy, dx, n, c, h, w, dy.shape[2], dy.shape[3], pads[2],
                             pads[0], PAD_MODES.index(mode))
        return dx

    def _axis_tables(self, size: int, out: int, scale: float | None, mode: str, align_corners: bool, dtype: Any,
                     with_readers: bool) -> list[Any]:
        """Device tables of one axis: i0, i1, lam (out,) and, for backward, first, last (size,)."""
        if mode not in UPSAMPLE_MODES:
            raise ValueError(f"upsample: mode must be one of {UPSAMPLE_MODES}, got {mode!r}")
        i0, i1, lam = upsample_source(size, out, scale, mode, align_corners)
        tables = [i0.astype(numpy.int32), i1.astype(numpy.int32), lam.astype(dtype)]
        if with_readers:
            # outputs o with i0[o] == i or i1[o] == i: both tables are non-decreasing, so a range
            first = numpy.minimum(numpy.searchsorted(i1, numpy.arange(size), "left"),
                                  numpy.searchsorted(i0, numpy.arange(size), "left"))
            last = numpy.maximum(numpy.searchsorted(i0, numpy.arange(size), "right"),
                                 numpy.searchsorted(i1, numpy.arange(size), "right")) - 1
            tables += [first.astype(numpy.int32), last.astype(numpy.int32)]
        return [self.xp.asarray(t) for t in tables]

    def upsample_forward(self, x, out_hw: tuple[int, int], scale: tuple[float | None, float | None], mode: str,
                         align_corners: bool):
        x = self._c(x)
        n, c, h, w = x.shape
        out_h, out_w = out_hw
        rows = self._axis_tables(h, out_h, scale[0], mode, align_corners, x.dtype, False)
        cols = self._axis_tables(w, out_w, scale[1], mode, align_corners, x.dtype, False)
        y = self.xp.empty((n, c, out_h, out_w), dtype=x.dtype)
        self.launcher.launch("upsample2d_forward", x.dtype, x, y, *rows, *cols, n, c, h, w, out_h, out_w)
        return y

    def upsample_backward(self, dy, x_shape: tuple[int, int, int, int], scale: tuple[float | None, float | None],
                          mode: str, align_corners: bool):
        dy = self._c(dy)
        n, c, h, w = x_shape
        out_h, out_w = dy.shape[2], dy.shape[3]
        rows = self._axis_tables(h, out_h, scale[0], mode, align_corners, dy.dtype, True)
        cols = self._axis_tables(w, out_w, scale[1], mode, align_corners, dy.dtype, True)
        dx = self.xp.empty(x_shape, dtype=dy.dtype)
        self.launcher.launch("upsample2d_backward", dy.dtype, dy, dx, *rows, *cols, n, c, h, w, out_h, out_w)
        return dx

