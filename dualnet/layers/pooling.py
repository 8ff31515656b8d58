"""Pooling layers: MaxPool2d and AvgPool2d on a shared window geometry; GlobalAvgPool2d."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UsageError
from ..ops.geometry import PoolGeometry
from .base import Layer, _pair


def _flag(value: Any, what: str, layer: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise UsageError(f"{layer}: {what} must be True or False, got {value!r}")
    return bool(value)


class _Pool2d(Layer):
    """Shared body. ceil_mode rounds the output size up (PyTorch's rule: the last window must start
    inside the input or its leading padding); dilation spaces a window's taps (max pooling)."""

    kind = "pool"

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 ceil_mode: bool = False):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = _pair(kernel_size, "kernel_size", name, 1)
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", name, 1)
        self.padding = _pair(padding, "padding", name, 0)
        self.dilation = _pair(dilation, "dilation", name, 1)
        self.ceil_mode = _flag(ceil_mode, "ceil_mode", name)
        if any(p > k // 2 for p, k in zip(self.padding, self.kernel_size)):
            # PyTorch's rule: without dilation a window then always holds an input (a dilated max
            # window of padding alone gives -inf, as PyTorch's does)
            raise UsageError(f"{name}: padding {self.padding} must be at most half the kernel "
                             f"size {self.kernel_size}")
        self._cache = None

    def config(self) -> dict[str, Any]:
        return dict(kernel_size=list(self.kernel_size), stride=list(self.stride), padding=list(self.padding),
                    ceil_mode=self.ceil_mode)

    def geometry(self, h: int, w: int) -> PoolGeometry:
        """The window geometry for an h x w input; ValueError if the output is empty."""
        return PoolGeometry.of(h, w, self.kernel_size, self.stride, self.padding, self.dilation, self.name,
                               self.ceil_mode)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3:
            raise UsageError(f"{self.name}: expected inputs of shape (C, H, W), got {tuple(shape)}")
        g = self.geometry(shape[-2], shape[-1])
        return (shape[0], g.out_h, g.out_w)


class MaxPool2d(_Pool2d):
    """Max over each window; x: (N, C, H, W) -> (N, C, out_h, out_w). Ties: first in the window."""

    def config(self) -> dict[str, Any]:
        return {**super().config(), "dilation": list(self.dilation)}

    def forward(self, x: Any) -> Any:
        self._check_input(x, 4, "(N, C, H, W)")
        geom = self.geometry(x.shape[2], x.shape[3])
        y, saved = self.ops.maxpool_forward(x, geom)
        self._cache = (saved, tuple(x.shape), geom) if self._records() else None
        return y

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        saved, x_shape, geom = self._need_cache()
        return self.ops.maxpool_backward(dy, saved, x_shape, geom) if need_input_grad else None


class AvgPool2d(_Pool2d):
    """Mean over each window; x: (N, C, H, W). count_include_pad (PyTorch's default True) counts
    the zero padding in the divisor; a ceil_mode window reaching past the padding never counts
    what lies beyond it."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        self.count_include_pad = _flag(count_include_pad, "count_include_pad", type(self).__name__)
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "count_include_pad": self.count_include_pad}

    def forward(self, x: Any) -> Any:
        self._check_input(x, 4, "(N, C, H, W)")
        geom = self.geometry(x.shape[2], x.shape[3])
        self._cache = (tuple(x.shape), geom) if self._records() else None
        return self.ops.avgpool_forward(x, geom, self.count_include_pad)

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        x_shape, geom = self._need_cache()
        return self.ops.avgpool_backward(dy, x_shape, geom, self.count_include_pad) if need_input_grad else None


class GlobalAvgPool2d(Layer):
    """Mean over every spatial position: x (N, C, H, W) -> (N, C)."""

    kind = "gap"

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3:
            raise UsageError(f"{self.name}: expected inputs of shape (C, H, W), got {tuple(shape)}")
        return (shape[0],)

    def forward(self, x: Any) -> Any:
        self._check_input(x, 4, "(N, C, H, W)")
        self._cache = tuple(x.shape) if self._records() else None
        return self.ops.global_avgpool_forward(x)

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        """dy: (N, C) -> dx (N, C, H, W), each position dy / (H * W)."""
        x_shape = self._need_cache()
        return self.ops.global_avgpool_backward(dy, x_shape) if need_input_grad else None
