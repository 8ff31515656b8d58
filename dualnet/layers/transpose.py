"""ConvTranspose2d: the transposed (fractionally strided) convolution, as the adjoint of Conv2d.

Its forward is a convolution's input gradient (conv2d_input_grad: transposed weights, then col2im)
and its backward a convolution's forward (the input gradient) and weight gradient, so it runs on
the convolution's ops and kernels (im2col, col2im, the products) with no second copy of them.
The convolution in question maps an output-shaped image back to the input's size, with this
layer's kernel, stride, padding and dilation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import init as _init
from ..errors import UsageError
from ..ops.geometry import ConvGeometry
from .base import WeightedLayer, _pair
from .conv import channel_arguments


class ConvTranspose2d(WeightedLayer):
    """x: (N, in_channels, H, W) -> (N, out_channels, out_h, out_w), out_h = (H - 1) * stride - 2 *
    padding + dilation * (kh - 1) + output_padding + 1 (PyTorch's); weight (in_channels,
    out_channels // groups, kh, kw), PyTorch's layout."""

    kind = "deconv"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1,
                 init: str = "he", dtype: Any = np.float32, seed: int | None = None):
        super().__init__()
        name = "ConvTranspose2d"
        self.in_channels, self.out_channels, self.groups = channel_arguments(name, in_channels, out_channels, groups)
        self.kernel_size = _pair(kernel_size, "kernel_size", name, 1)
        self.stride = _pair(stride, "stride", name, 1)
        self.padding = _pair(padding, "padding", name, 0)
        self.output_padding = _pair(output_padding, "output_padding", name, 0)
        self.dilation = _pair(dilation, "dilation", name, 1)
        if any(op >= max(s, d) for op, s, d in zip(self.output_padding, self.stride, self.dilation)):
            raise UsageError(f"{name}: output_padding {self.output_padding} must be smaller than the stride "
                             f"{self.stride} or the dilation {self.dilation} (as in PyTorch)")
        self.init = init
        kh, kw = self.kernel_size
        # PyTorch's fans for this layout: fan_in from dim 1 (out_channels // groups) times the kernel
        fan_in, fan_out = out_channels // groups * kh * kw, in_channels // groups * kh * kw
        shape = (in_channels, out_channels // groups, kh, kw)
        w = _init.initialize(init, shape, fan_in, fan_out, _init.rng(seed), dtype)
        self._init_parameters(w, out_channels, bias, dtype)

    def config(self) -> dict[str, Any]:
        return dict(in_channels=self.in_channels, out_channels=self.out_channels, kernel_size=list(self.kernel_size),
                    stride=list(self.stride), padding=list(self.padding), output_padding=list(self.output_padding),
                    groups=self.groups, bias=self.bias is not None, dilation=list(self.dilation))

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        """The output size for an h x w input; UsageError (a ValueError) if it is empty."""
        out = tuple((size - 1) * s - 2 * p + d * (k - 1) + op + 1 for size, k, s, p, d, op in
                    zip((h, w), self.kernel_size, self.stride, self.padding, self.dilation, self.output_padding))
        if min(out) < 1:
            raise UsageError(f"{self.name}: input {h}x{w} gives an empty {out[0]}x{out[1]} output (padding "
                             f"{self.padding} removes more than the kernel adds); use less padding")
        return out[0], out[1]

    def geometry(self, h: int, w: int) -> ConvGeometry:
        """The geometry of the adjoint convolution: an output-sized image to an h x w one (its first
        h x w windows: an output padding of at least the stride leaves trailing rows no window reads,
        which then get the bias alone, as in PyTorch)."""
        self.out_hw(h, w)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        return ConvGeometry(kh, kw, sh, sw, ph, pw, dh, dw, h, w)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3 or shape[0] != self.in_channels:
            raise UsageError(f"{self.name}: expected inputs of shape ({self.in_channels}, H, W), got {tuple(shape)}")
        return (self.out_channels, *self.out_hw(shape[1], shape[2]))

    def forward(self, x: Any) -> Any:
        self._check_input(x, 4, "(N, C, H, W)")
        if x.shape[1] != self.in_channels:
            raise UsageError(f"{self.name}: expected {self.in_channels} input channels, got input of shape "
                             f"{tuple(x.shape)}")
        n = x.shape[0]
        geom = self.geometry(x.shape[2], x.shape[3])
        y_shape = (n, self.out_channels, *self.out_hw(x.shape[2], x.shape[3]))
        y = self.ops.conv2d_input_grad(x, self.weight.data, y_shape, geom, self.groups)
        if self.bias is not None:
            y = self.ops.bias_act(y.reshape(n, self.out_channels, -1), self.bias.data, None, False).reshape(y_shape)
        self._cache = (x, y_shape, geom) if self._records() else None
        return y

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        """dy: (N, out_channels, out_h, out_w) -> dx (N, in_channels, H, W): the adjoint convolution's
        forward; the weight gradient is that convolution's, with this layer's input as its dy."""
        x, y_shape, geom = self._need_cache()
        w = self.weight.data
        dx, cols = self.ops.conv2d_forward(dy, w, None, geom, self.groups)
        wgrad, bgrad = self.grad_buffers()
        self.ops.conv2d_backward(x, cols, w, y_shape, geom, self.groups, wgrad, None, need_dx=False)
        if bgrad is not None:  # the bias is added after the adjoint convolution: its gradient sums dy
            self.ops.accumulate_grads(bgrad, dy.sum(axis=(0, 2, 3)), None, None)
        return dx if need_input_grad else None
