"""Conv2d: 2-D convolution by im2col and one matrix product over the batch."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import init as _init
from ..errors import UsageError
from ..ops.geometry import ConvGeometry
from .base import WeightedLayer, _pair, _positive_int


def conv_padding(padding: Any, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
                 layer: str) -> str | tuple[int, ...]:
    """A convolution's padding spec: "same" (stride 1 only, as PyTorch's), "valid", an int, an (h, w)
    pair or an explicit (left, right, top, bottom) 4-tuple of ints >= 0."""
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise UsageError(f"{layer}: padding must be 'same', 'valid', an int, an (h, w) pair or a (left, right, "
                             f"top, bottom) tuple, got {padding!r}")
        if padding == "same" and stride != (1, 1):
            raise UsageError(f"{layer}: padding='same' needs stride 1 (as in PyTorch), got stride {stride}; give "
                             "explicit padding for a strided convolution")
        return padding
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in padding):
            raise UsageError(f"{layer}: padding (left, right, top, bottom) must be 4 ints >= 0, got {padding!r}")
        return tuple(int(v) for v in padding)
    return _pair(padding, "padding", layer, 0)


def explicit_pads(padding: str | tuple[int, ...], kernel: tuple[int, int], dilation: tuple[int, int]
                  ) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) of a padding spec. "same" pads d(k-1) in all per axis, an odd
    total's extra element at the end (TensorFlow's and ONNX's SAME_UPPER, PyTorch's choice)."""
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        (th, tw) = ((k - 1) * d for k, d in zip(kernel, dilation))
        return tw // 2, tw - tw // 2, th // 2, th - th // 2
    values = [int(v) for v in padding]
    if len(values) == 4:
        return values[0], values[1], values[2], values[3]
    ph, pw = values
    return pw, pw, ph, ph


def check_addend(layer: str, addend: Any, x_shape: tuple[int, ...]) -> None:
    """Refuse a backward_add addend whose shape is not the input's (x_shape)."""
    if tuple(getattr(addend, "shape", ())) != tuple(x_shape):
        raise UsageError(f"{layer}: backward_add's addend has shape {tuple(getattr(addend, 'shape', ()))}, expected "
                         f"the input's {tuple(x_shape)}; pass the other path's gradient of this layer's input")


def channel_arguments(name: str, in_channels: Any, out_channels: Any, groups: Any) -> tuple[int, int, int]:
    """(in_channels, out_channels, groups) of a convolution layer `name`, checked: positive
    integers, groups dividing both channel counts (Conv2d and ConvTranspose2d alike)."""
    cin = _positive_int(in_channels, "in_channels", name)
    cout = _positive_int(out_channels, "out_channels", name)
    g = _positive_int(groups, "groups", name)
    if cin % g or cout % g:
        raise UsageError(f"{name}: groups={g} must divide in_channels={cin} and out_channels={cout}")
    return cin, cout, g


class Conv2d(WeightedLayer):
    """2-D convolution (cross-correlation) by im2col and one matrix product over the batch.

    x: (N, C, H, W) -> (N, out_channels, out_h, out_w); weight (out, C // groups, kh, kw).
    padding: "same" (output size = input size; stride 1), "valid" (none), an int, an (h, w) pair,
    or an explicit (left, right, top, bottom) tuple (asymmetric; the order of the pad layers).
    """

    kind = "conv"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 init: str = "he", dtype: Any = np.float32, seed: int | None = None):
        super().__init__()
        name = "Conv2d"
        self.in_channels, self.out_channels, self.groups = channel_arguments(name, in_channels, out_channels, groups)
        self.kernel_size = _pair(kernel_size, "kernel_size", name, 1)
        self.stride = _pair(stride, "stride", name, 1)
        self.dilation = _pair(dilation, "dilation", name, 1)
        self.padding = conv_padding(padding, self.kernel_size, self.stride, self.dilation, name)
        #: the explicit (left, right, top, bottom) padding the padding spec means
        self.pads = explicit_pads(self.padding, self.kernel_size, self.dilation)
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
                    padding=self.padding if isinstance(self.padding, str) else list(self.padding),
                    dilation=list(self.dilation), groups=self.groups,
                    bias=self.bias is not None)

    def geometry(self, h: int, w: int) -> ConvGeometry:
        """The convolution's geometry for an h x w input; ValueError if the output is empty."""
        return ConvGeometry.of(h, w, self.kernel_size, self.stride, self.pads, self.dilation, self.name)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3 or shape[0] != self.in_channels:
            raise UsageError(f"{self.name}: expected inputs of shape ({self.in_channels}, H, W), got "
                             f"{tuple(shape)}")
        g = self.geometry(shape[-2], shape[-1])
        return (self.out_channels, g.out_h, g.out_w)

    def input_geometry(self, x: Any) -> ConvGeometry:
        """Validate x: (N, C, H, W) against this layer and return its geometry."""
        self._check_input(x, 4, "(N, C, H, W)")
        if x.shape[1] != self.in_channels:
            raise UsageError(f"{self.name}: expected {self.in_channels} input channels, got input of "
                             f"shape {tuple(x.shape)}")
        return self.geometry(x.shape[2], x.shape[3])

    def forward(self, x: Any) -> Any:
        geom = self.input_geometry(x)
        y, saved = self.ops.conv2d_forward(x, self.weight.data, self.bias_data(), geom, self.groups)
        self._cache = (saved, tuple(x.shape), geom) if self._records() else None
        return y

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        """dy: (N, out_channels, out_h, out_w) -> dx (N, C, H, W), or None if not need_input_grad."""
        saved, x_shape, geom = self._need_cache()
        return self.ops.conv2d_backward(dy, saved, self.weight.data, x_shape, geom, self.groups,
                                        *self.grad_buffers(), need_input_grad)

    def backward_add(self, dy: Any, addend: Any) -> Any:
        """dx + addend (N, C, H, W), summed by the op that makes dx (Layer.backward_add)."""
        saved, x_shape, geom = self._need_cache()
        check_addend(self.name, addend, x_shape)
        return self.ops.conv2d_backward(dy, saved, self.weight.data, x_shape, geom, self.groups,
                                        *self.grad_buffers(), True, addend)
