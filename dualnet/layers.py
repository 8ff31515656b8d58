"""Layers with hand-written backward passes (no autograd tape).

Protocol: `y = layer(x)` runs forward and keeps what backward needs; `dx = layer.backward(dy)`
returns dL/dx and ADDS parameter gradients into `param.grad`. Every layer computes with the op
table of the device its parameters live on (`layer.device`), so one body of code serves NumPy,
CuPy and the emulator.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from . import init as _init
from .backend import Device, check_same_device, get_device, get_device_object, to_device
from .ops.numpy_ops import out_size

__all__ = ["Parameter", "Layer", "Conv2d", "MaxPool2d", "AvgPool2d", "Linear", "ReLU", "Tanh",
           "Sigmoid", "Flatten", "Dropout", "Sequential", "LAYER_TYPES"]


class Parameter:
    """A trainable array `data` and its accumulated gradient `grad` (same device and dtype)."""

    def __init__(self, data: Any, name: str = "", device: Device | None = None):
        self.data = data
        self.grad = data * 0
        self.name = name
        self.device = device if device is not None else get_device()
        # optimizer buffers (momentum, Adam moments) live with the parameter, so that moving
        # a model moves its optimizer state too
        self.state: dict[str, Any] = {}

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def size(self) -> int:
        return int(self.data.size)

    def __repr__(self) -> str:
        return f"Parameter({self.name or '?'}, shape={self.shape}, dtype={self.data.dtype})"


def _pair(value: Any, what: str, layer: str, minimum: int) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, each >= minimum; ValueError names the layer."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else value
    ok = (isinstance(pair, (tuple, list)) and len(pair) == 2
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair))
    if not ok or isinstance(value, bool):
        raise ValueError(f"{layer}: {what} must be an int or an (h, w) pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{layer}: {what} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _positive_int(value: Any, what: str, layer: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{layer}: {what} must be a positive int, got {value!r}")
    return int(value)


class Layer:
    """Base layer: parameters, train/eval mode, device and dtype moves."""

    kind = "layer"  # prefix of automatic names in Sequential (conv1, pool1, fc1, ...)

    def __init__(self) -> None:
        self.training = True
        self.device: Device = get_device()
        self.name = type(self).__name__

    # the protocol
    def forward(self, x: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dy: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: Any) -> Any:
        return self.forward(x)

    def own_parameters(self) -> list[tuple[str, Parameter]]:
        return []

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, p in self.own_parameters():
            yield prefix + name, p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this layer (stored in checkpoints)."""
        return {}

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one output example for one input example of `shape` (no batch axis)."""
        return shape

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad[...] = 0

    def train(self, mode: bool = True) -> "Layer":
        self.training = mode
        return self

    def eval(self) -> "Layer":
        return self.train(False)

    def to(self, name: str | Device) -> "Layer":
        """Move parameters (and their gradients) to a device."""
        dev = get_device_object(name)
        for p in self.parameters():
            p.data = to_device(p.data, dev)
            p.grad = to_device(p.grad, dev)
            p.state = {k: to_device(v, dev) for k, v in p.state.items()}
            p.device = dev
        self.device = dev
        self._cache = None
        return self

    def astype(self, dtype: Any) -> "Layer":
        """Cast parameters and gradients (float32 to train, float64 for gradient checks)."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = p.grad.astype(dtype)
            p.state = {k: v.astype(dtype) for k, v in p.state.items()}
        return self

    @property
    def ops(self) -> Any:
        return self.device.ops

    def _check_input(self, x: Any, ndim: int, what: str) -> None:
        if getattr(x, "ndim", None) != ndim:
            raise ValueError(f"{self.name}: expected a {ndim}-D input {what}, got shape "
                             f"{tuple(getattr(x, 'shape', ()))}")
        if x.dtype.kind != "f":
            raise ValueError(f"{self.name}: expected a floating-point input, got dtype {x.dtype}")
        params = list(self.parameters())
        if params:
            check_same_device(self.name, input=x, weight=params[0].data)
            if params[0].data.dtype != x.dtype:
                raise ValueError(f"{self.name}: input dtype {x.dtype} differs from parameter dtype "
                                 f"{params[0].data.dtype}; cast one of them (model.astype(...))")

    def _need_cache(self) -> Any:
        cache = getattr(self, "_cache", None)
        if cache is None:
            raise RuntimeError(f"{self.name}: backward() called without a forward() in training mode")
        return cache

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Conv2d(Layer):
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
        w = _init.initialize(init, shape, fan_in, fan_out, rng, dtype)
        self.weight = Parameter(to_device(w, self.device), "weight", self.device)
        self.bias = (Parameter(to_device(np.zeros(out_channels, dtype), self.device), "bias", self.device)
                     if bias else None)
        self._cache = None

    def own_parameters(self) -> list[tuple[str, Parameter]]:
        return [("weight", self.weight)] + ([("bias", self.bias)] if self.bias is not None else [])

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

    def _accumulate(self, dw: Any, db: Any) -> None:
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db

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

    def geometry(self, h: int, w: int) -> tuple[int, ...]:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        oh, ow = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
        if oh < 1 or ow < 1:
            raise ValueError(f"{self.name}: input {h}x{w} with kernel {kh}x{kw}, stride {sh}x{sw}, "
                             f"padding {ph}x{pw} gives an empty {oh}x{ow} output")
        return kh, kw, sh, sw, ph, pw, 1, 1, oh, ow

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3:
            raise ValueError(f"{self.name}: expected inputs of shape (C, H, W), got {tuple(shape)}")
        g = self.geometry(shape[-2], shape[-1])
        return (shape[0], g[8], g[9])


class MaxPool2d(_Pool2d):
    """Max over each window; x: (N, C, H, W) -> (N, C, out_h, out_w). Ties: first in the window."""

    def forward(self, x: Any) -> Any:
        self._check_input(x, 4, "(N, C, H, W)")
        geom = self.geometry(x.shape[2], x.shape[3])
        y, argmax = self.ops.maxpool_forward(x, geom)
        self._cache = (argmax, tuple(x.shape), geom) if self.training else None
        return y

    def backward(self, dy: Any) -> Any:
        argmax, x_shape, geom = self._need_cache()
        return self.ops.maxpool_backward(dy, argmax, x_shape, geom)


class AvgPool2d(_Pool2d):
    """Mean over each window, padding counted as zeros; x: (N, C, H, W)."""

    def forward(self, x: Any) -> Any:
        self._check_input(x, 4, "(N, C, H, W)")
        geom = self.geometry(x.shape[2], x.shape[3])
        self._cache = (tuple(x.shape), geom) if self.training else None
        return self.ops.avgpool_forward(x, geom)

    def backward(self, dy: Any) -> Any:
        x_shape, geom = self._need_cache()
        return self.ops.avgpool_backward(dy, x_shape, geom)


class Linear(Layer):
    """y = x W^T + b; x: (N, in_features) -> (N, out_features); weight (out, in)."""

    kind = "fc"

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: str = "he",
                 dtype: Any = np.float32, seed: int | None = None):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        self.init = init
        w = _init.initialize(init, (out_features, in_features), in_features, out_features, _init.rng(seed), dtype)
        self.weight = Parameter(to_device(w, self.device), "weight", self.device)
        self.bias = (Parameter(to_device(np.zeros(out_features, dtype), self.device), "bias", self.device)
                     if bias else None)
        self._cache = None

    def own_parameters(self) -> list[tuple[str, Parameter]]:
        return [("weight", self.weight)] + ([("bias", self.bias)] if self.bias is not None else [])

    def config(self) -> dict[str, Any]:
        return dict(in_features=self.in_features, out_features=self.out_features, bias=self.bias is not None)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if tuple(shape) != (self.in_features,):
            raise ValueError(f"{self.name}: expected {self.in_features} input features, got inputs "
                             f"of shape {tuple(shape)}")
        return (self.out_features,)

    def forward(self, x: Any, act: str | None = None) -> Any:
        self._check_input(x, 2, "(N, in_features)")
        if x.shape[1] != self.in_features:
            raise ValueError(f"{self.name}: expected {self.in_features} input features, got input of "
                             f"shape {tuple(x.shape)}")
        bias = self.bias.data if self.bias is not None else None
        self._cache = x if self.training else None
        return self.ops.linear_forward(x, self.weight.data, bias, act)

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        """dy: (N, out_features) -> dx (N, in_features), or None if not need_input_grad."""
        x = self._need_cache()
        dx, dw, db = self.ops.linear_backward(dy, x, self.weight.data, self.bias is not None, need_input_grad)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx


class _Activation(Layer):
    """Elementwise activation whose backward needs only its output y."""

    def forward(self, x: Any) -> Any:
        y = getattr(self.ops, f"{self.kind}_forward")(x)
        self._cache = y if self.training else None
        return y

    def accept_output(self, y: Any) -> Any:
        """Record y computed by a fused producer (e.g. conv + relu in one kernel)."""
        self._cache = y if self.training else None
        return y

    def backward(self, dy: Any) -> Any:
        return getattr(self.ops, f"{self.kind}_backward")(dy, self._need_cache())


class ReLU(_Activation):
    kind = "relu"


class Tanh(_Activation):
    kind = "tanh"


class Sigmoid(_Activation):
    kind = "sigmoid"


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...)."""

    kind = "flatten"

    def forward(self, x: Any) -> Any:
        self._cache = tuple(x.shape)
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: Any) -> Any:
        return dy.reshape(self._need_cache())

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (int(np.prod(shape)),)


class Dropout(Layer):
    """Inverted dropout: zero with probability p while training, identity in eval mode."""

    kind = "dropout"

    def __init__(self, p: float = 0.5, seed: int = 0):
        super().__init__()
        if not (isinstance(p, (int, float)) and 0.0 <= p < 1.0):
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._cache = None

    def config(self) -> dict[str, Any]:
        return dict(p=self.p, seed=self.seed)

    def forward(self, x: Any) -> Any:
        if not self.training or self.p == 0.0:
            self._cache = "identity"
            return x
        mask = self.ops.dropout_mask(x.shape, self.p, x.dtype, self.rng)
        self._cache = mask
        return x * mask

    def backward(self, dy: Any) -> Any:
        mask = self._need_cache()
        return dy if isinstance(mask, str) else dy * mask


from .sequential import Sequential  # noqa: E402  (Sequential builds on the layers above)

LAYER_TYPES: dict[str, type] = {cls.__name__: cls for cls in
                                (Conv2d, MaxPool2d, AvgPool2d, Linear, ReLU, Tanh, Sigmoid, Flatten, Dropout)}
