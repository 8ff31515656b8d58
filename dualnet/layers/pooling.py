"""Pooling layers: MaxPool2d and AvgPool2d on a shared window geometry; GlobalAvgPool2d."""

from __future__ import annotations

from typing import Any

from ..ops.geometry import PoolGeometry
from .base import Layer, _pair


class _Pool2d(Layer):
    kind = "pool"

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = _pair(kernel_size, "kernel_size", name, 1)
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", name, 1)
        self.padding = _pair(padding, "padding", name, 0)
        if any(p > k // 2 for p, k in zip(self.padding, self.kernel_size)):
            # a window made only of padding would have no input to take its value from
            raise ValueError(f"{name}: padding {self.padding} must be at most half the kernel "
                             f"size {self.kernel_size}")
        self._cache = None

    def config(self) -> dict[str, Any]:
        return dict(kernel_size=list(self.kernel_size), stride=list(self.stride), padding=list(self.padding))

    def geometry(self, h: int, w: int) -> PoolGeometry:
        """The window geometry for an h x w input; ValueError if the output is empty."""
        return PoolGeometry.of(h, w, self.kernel_size, self.stride, self.padding, self.name)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3:
            raise ValueError(f"{self.name}: expected inputs of shape (C, H, W), got {tuple(shape)}")
        g = self.geometry(shape[-2], shape[-1])
        return (shape[0], g.out_h, g.out_w)


class MaxPool2d(_Pool2d):
    """Max over each window; x: (N, C, H, W) -> (N, C, out_h, out_w). Ties: first in the window."""

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
    """Mean over each window, padding counted as zeros; x: (N, C, H, W)."""

    def forward(self, x: Any) -> Any:
        self._check_input(x, 4, "(N, C, H, W)")
        geom = self.geometry(x.shape[2], x.shape[3])
        self._cache = (tuple(x.shape), geom) if self._records() else None
        return self.ops.avgpool_forward(x, geom)

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        x_shape, geom = self._need_cache()
        return self.ops.avgpool_backward(dy, x_shape, geom) if need_input_grad else None


class GlobalAvgPool2d(Layer):
    """Mean over every spatial position: x (N, C, H, W) -> (N, C)."""

    kind = "gap"

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3:
            raise ValueError(f"{self.name}: expected inputs of shape (C, H, W), got {tuple(shape)}")
        return (shape[0],)

    def forward(self, x: Any) -> Any:
        self._check_input(x, 4, "(N, C, H, W)")
        self._cache = tuple(x.shape) if self._records() else None
        return self.ops.global_avgpool_forward(x)

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        """dy: (N, C) -> dx (N, C, H, W), each position dy / (H * W)."""
        x_shape = self._need_cache()
        return self.ops.global_avgpool_backward(dy, x_shape) if need_input_grad else None
