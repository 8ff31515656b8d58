"""Fused steps: several layers run as one op, chosen once by `plan` (Sequential's plan step).

A fused step is a small Layer holding the original layers: it computes with their parameters and
adds into their gradients, but keeps its own cache, so no layer writes another layer's state. The
reference table declares every fused op as the plain composition of its parts, so a fused step
gives the same values on every device; faster tables override the op (ops/cpu.py, ops/cuda.py).

Rules match exact layer types on purpose: a subclass of Conv2d may change what forward does, and
a fused step would silently skip that change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..backend import Device, get_device_object
from .base import Layer
from .conv import Conv2d
from .elementwise import ReLU
from .linear import Linear
from .pooling import MaxPool2d


class FusedStep(Layer):
    """Base of the fused steps: `parts` are the original layers, in order."""

    kind = "fused"

    def __init__(self, *parts: Layer):
        # no Layer.__init__: mode and device are the parts' own, never a second copy
        self.parts = parts
        self.name = "+".join(p.name for p in parts)
        self._cache = None

    @property
    def training(self) -> bool:
        return self.parts[0].training

    @training.setter
    def training(self, mode: bool) -> None:
        for p in self.parts:
            p.train(mode)

    @property
    def device(self) -> Device:
        return self.parts[0].device

    @device.setter
    def device(self, dev: Device) -> None:
        for p in self.parts:
            p.to(dev)

    def to(self, name: str | Device) -> FusedStep:
        self.device = get_device_object(name)
        self._cache = None
        return self

    def children(self) -> list[tuple[str, Layer]]:
        # the parts under their own names: parameters and buffers are named as without fusion
        return [(p.name, p) for p in self.parts]

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        for p in self.parts:
            shape = p.output_shape(shape)
        return shape


class ConvReLU(FusedStep):
    """relu(conv(x)) with the bias and ReLU in one op (one kernel on the GPU); x: (N, C, H, W)."""

    def __init__(self, conv: Conv2d, relu: ReLU):
        super().__init__(conv, relu)
        self.conv = conv

    def forward(self, x: Any) -> Any:
        conv = self.conv
        geom = conv.input_geometry(x)
        y, saved = self.ops.conv2d_forward(x, conv.weight.data, conv.bias_data(), geom, conv.groups, act="relu")
        self._cache = (saved, tuple(x.shape), geom, y) if self._records() else None
        return y

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        conv = self.conv
        saved, x_shape, geom, y = self._need_cache()
        dz = self.ops.relu_backward(dy, y)
        return self.ops.conv2d_backward(dz, saved, conv.weight.data, x_shape, geom, conv.groups,
                                        *conv.grad_buffers(), need_input_grad)


class LinearReLU(FusedStep):
    """relu(linear(x)) with the bias and ReLU in one op; x: (N, in_features)."""

    def __init__(self, linear: Linear, relu: ReLU):
        super().__init__(linear, relu)
        self.linear = linear

    def forward(self, x: Any) -> Any:
        linear = self.linear
        linear.check_input(x)
        y = self.ops.linear_forward(x, linear.weight.data, linear.bias_data(), act="relu")
        self._cache = (x, y) if self._records() else None
        return y

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        linear = self.linear
        x, y = self._need_cache()
        dz = self.ops.relu_backward(dy, y)
        return self.ops.linear_backward(dz, x, linear.weight.data, *linear.grad_buffers(), need_input_grad)


class ConvReLUMaxPool(FusedStep):
    """maxpool(relu(conv(x))) through the fused op `conv_relu_maxpool_*`; x: (N, C, H, W)."""

    def __init__(self, conv: Conv2d, relu: ReLU, pool: MaxPool2d):
        super().__init__(conv, relu, pool)
        self.conv, self.pool = conv, pool

    def forward(self, x: Any) -> Any:
        conv = self.conv
        geom = conv.input_geometry(x)
        pool_geom = self.pool.geometry(geom.out_h, geom.out_w)
        if not self._records():  # inference: the table may skip what only backward needs
            self._cache = None
            return self.ops.conv_relu_maxpool_inference(x, conv.weight.data, conv.bias_data(), geom, pool_geom,
                                                        conv.groups)
        y, saved = self.ops.conv_relu_maxpool_forward(x, conv.weight.data, conv.bias_data(), geom, pool_geom,
                                                      conv.groups)
        self._cache = saved
        return y

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        conv = self.conv
        return self.ops.conv_relu_maxpool_backward(dy, self._need_cache(), conv.weight.data, *conv.grad_buffers(),
                                                   need_input_grad)


#: (layer types in a row, the step that runs them), tried in order at each position
FUSIONS: tuple[tuple[tuple[type[Layer], ...], type[FusedStep]], ...] = (
    ((Conv2d, ReLU, MaxPool2d), ConvReLUMaxPool),
    ((Conv2d, ReLU), ConvReLU),
    ((Linear, ReLU), LinearReLU),
)


def plan(layers: Sequence[Layer]) -> list[Layer]:
    """The steps that run `layers`: runs matching a FUSIONS rule become one fused step."""
    steps: list[Layer] = []
    i = 0
    while i < len(layers):
        for pattern, step in FUSIONS:
            window = layers[i:i + len(pattern)]
            if len(window) == len(pattern) and all(type(lay) is t for lay, t in zip(window, pattern)):
                steps.append(step(*window))
                i += len(pattern)
                break
        else:
            steps.append(layers[i])
            i += 1
    return steps
