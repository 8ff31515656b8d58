"""Conv2d: 2-D convolution by im2col, and its fused conv + ReLU + max-pool path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import init as _init
from ..ops.numpy_ops import out_size
from .base import WeightedLayer, _pair, _positive_int

if TYPE_CHECKING:
    from .elementwise import ReLU
    from .pooling import MaxPool2d


class Conv2d(WeightedLayer):
    """2-D convolution (cross-correlation) by im2col and one matrix product over the batch.

    x: (N, C, H, W) -> (N, out_channels, out_h, out_w); weight (out, C // groups, kh, kw).
    """

    kind = "conv"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 init: str = "he", dtype: Any = np.float32, seed: int | None = None):
        super().__init__()
        name = "Conv2d"
        self.in_channels = _positive_int(in_channels, "in_channels", name)
        self.out_channels = _positive_int(out_channels, "out_channels", name)
        self.groups = _positive_int(groups, "groups", name)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        self.kernel_size = _pair(kernel_size, "kernel_size", name, 1)
        self.stride = _pair(stride, "stride", name, 1)
        self.padding = _pair(padding, "padding", name, 0)
        self.dilation = _pair(dilation, "dilation", name, 1)
        self.init = init
        kh, kw = self.kernel_size
        fan_in = in_channels // groups * kh * kw
        fan_out = out_channels // groups * kh * kw
        shape = (out_channels, in_channels // groups, kh, kw)
        rng = _init.rng(seed)
        self._init_parameters(_init.initialize(init, shape, fan_in, fan_out, rng, dtype), out_channels, bias, dtype)

    def config(self) -> dict[str, Any]:
        return dict(in_channels=self.in_channels, out_channels=self.out_channels,
                    kernel_size=list(self.kernel_size), stride=list(self.stride),
                    padding=list(self.padding), dilation=list(self.dilation), groups=self.groups,
                    bias=self.bias is not None)

    def geometry(self, h: int, w: int) -> tuple[int, ...]:
        """(kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w) for an h x w input; error if empty."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        oh, ow = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
        if oh < 1 or ow < 1:
            raise ValueError(f"{self.name}: input {h}x{w} with kernel {kh}x{kw}, stride {sh}x{sw}, "
                             f"padding {ph}x{pw}, dilation {dh}x{dw} gives an empty {oh}x{ow} output")
        return kh, kw, sh, sw, ph, pw, dh, dw, oh, ow

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3 or shape[0] != self.in_channels:
            raise ValueError(f"{self.name}: expected inputs of shape ({self.in_channels}, H, W), got "
                             f"{tuple(shape)}")
        g = self.geometry(shape[-2], shape[-1])
        return (self.out_channels, g[8], g[9])

    def _input_geometry(self, x: Any) -> tuple[int, ...]:
        self._check_input(x, 4, "(N, C, H, W)")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"{self.name}: expected {self.in_channels} input channels, got input of "
                             f"shape {tuple(x.shape)}")
        return self.geometry(x.shape[2], x.shape[3])

    def forward(self, x: Any, act: str | None = None) -> Any:
        geom = self._input_geometry(x)
        bias = self.bias.data if self.bias is not None else None
        y, cols = self.ops.conv2d_forward(x, self.weight.data, bias, geom, self.groups, act)
        self._cache = (cols, tuple(x.shape), geom) if self.training else None
        return y

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        """dy: (N, out_channels, out_h, out_w) -> dx (N, C, H, W), or None if not need_input_grad."""
        cache = self._need_cache()
        if not isinstance(cache, tuple):
            raise RuntimeError(f"{self.name}: the last forward ran fused with the ReLU and pooling after "
                               "it; call backward on the Sequential that ran it")
        cols, x_shape, geom = cache
        dx, dw, db = self.ops.conv2d_backward(dy, cols, self.weight.data, x_shape, geom, self.groups,
                                              self.bias is not None, need_input_grad)
        self._accumulate(dw, db)
        return dx

    def forward_relu_maxpool(self, x: Any, relu: "ReLU", pool: "MaxPool2d") -> Any:
        """pool(relu(self(x))) through the device's fused op (see CpuOps), or None where the
        device has none or does not cover the shapes: the caller then runs the three layers.

        Used by Sequential, whose backward then calls `backward_relu_maxpool` for the three.
        """
        fused = getattr(self.ops, "conv_relu_maxpool_forward", None)
        if fused is None or self.groups != 1:
            return None
        geom = self._input_geometry(x)
        pool_geom = pool.geometry(geom[8], geom[9])
        bias = self.bias.data if self.bias is not None else None
        out = fused(x, self.weight.data, bias, geom, pool_geom)
        if out is None:
            return None
        y, cache = out
        self._cache = cache if self.training else None
        relu._cache = pool._cache = None  # their backward runs inside backward_relu_maxpool
        return y

    def backward_relu_maxpool(self, dy: Any, need_input_grad: bool = True) -> Any:
        """Backward of `forward_relu_maxpool`: dy (N, out_channels, pooled h, pooled w) -> dx."""
        cache = self._need_cache()
        dx, dw, db = self.ops.conv_relu_maxpool_backward(dy, cache, self.weight.data, self.bias is not None,
                                                         need_input_grad)
        self._accumulate(dw, db)
        return dx
