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
from ..errors import UsageError
from .base import Layer
from .conv import Conv2d, check_addend
from .elementwise import ReLU
from .linear import Linear
from .norm import BatchNorm1d, BatchNorm2d
from .pooling import MaxPool2d
from .residual import Residual, backward_both


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

    def backward_add(self, dy: Any, addend: Any) -> Any:
        """dx + addend, summed by the convolution's backward op (Layer.backward_add)."""
        conv = self.conv
        saved, x_shape, geom, y = self._need_cache()
        check_addend(self.name, addend, x_shape)
        dz = self.ops.relu_backward(dy, y)
        return self.ops.conv2d_backward(dz, saved, conv.weight.data, x_shape, geom, conv.groups,
                                        *conv.grad_buffers(), True, addend)


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
        return self.ops.linear_relu_backward(dy, y, x, linear.weight.data, *linear.grad_buffers(), need_input_grad)


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


class BatchNormReLU(FusedStep):
    """relu(batchnorm(x)) through batchnorm_act_forward (training) or batchnorm_act_eval (eval mode,
    or a frozen batch norm): one pass fewer over the data; x: (N, C, H, W), or (N, C[, L])."""

    def __init__(self, bn: BatchNorm2d | BatchNorm1d, relu: ReLU):
        super().__init__(bn, relu)
        self.bn = bn

    def forward(self, x: Any) -> Any:
        y, cache = self.bn.run(x, act="relu")
        self._cache = cache if self._records() else None
        return y

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        return self.bn.run_backward(dy, self._need_cache(), need_input_grad)[0]


def _sequential_steps(layer: Layer) -> list[Layer] | None:
    """The steps `layer` runs in order if it is exactly a Sequential (a subclass may change what
    forward does), else None. Matched by name: sequential.py imports this module."""
    cls = type(layer)
    if (cls.__module__, cls.__qualname__) != (f"{__package__}.sequential", "Sequential"):
        return None
    steps: list[Layer] = layer.steps()
    return steps


class ResidualReLU(FusedStep):
    """relu(body(x) + shortcut(x)): a Residual and the ReLU after it; x: (N, C, H, W).

    When the body is a Sequential whose last step is a batch norm (a ResNet's basic block), that
    batch norm, the sum and the ReLU are one op (batchnorm_act_forward with the shortcut's output
    as its residual: BN + add + ReLU in one pass); otherwise the sum and the ReLU are
    (add_relu_forward). The body's other steps and the shortcut run as they would unfused."""

    def __init__(self, res: Residual, relu: ReLU):
        super().__init__(res, relu)
        self.res = res

    def _split(self) -> tuple[list[Layer], BatchNorm2d | BatchNorm1d] | None:
        """(the body's steps before its last, that last batch norm), or None when it is no such body."""
        steps = _sequential_steps(self.res.body)
        if steps and type(steps[-1]) in (BatchNorm2d, BatchNorm1d):
            return steps[:-1], steps[-1]  # type: ignore[return-value]
        return None

    def forward(self, x: Any) -> Any:
        res = self.res
        split = self._split()
        if split is None:
            y = res.body(x)
        else:
            head, bn = split
            y = x
            for step in head:
                y = step(y)
        side = res.shortcut(x) if res.shortcut is not None else x
        if y.shape != side.shape:
            raise UsageError(f"{res.name}: the body gave shape {tuple(y.shape)} but the shortcut "
                             f"{tuple(side.shape)} for input {tuple(x.shape)}; both paths must give one shape")
        if split is None:
            out = self.ops.add_relu_forward(y, side)
            self._cache = (None, None, out) if self._records() else None
            return out
        out, bn_cache = bn.run(y, act="relu", residual=side)
        self._cache = (split, bn_cache, None) if self._records() else None
        return out

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        """dy -> the body's input gradient plus the shortcut's (the sum's gradient itself for the
        identity). The shortcut runs first, so the body's first step adds its gradient into its own
        (backward_add: no pass of its own for the sum on a GPU)."""
        res = self.res
        split, bn_cache, out = self._need_cache()
        if split is None:
            dz = self.ops.relu_backward(dy, out)
            first, dx = res.body, dz
        else:
            head, bn = split
            dx, dz = bn.run_backward(dy, bn_cache, True)
            if not head:  # the body is its batch norm alone
                ds = res.shortcut.backward(dz, need_input_grad) if res.shortcut is not None else dz
                return dx + ds if need_input_grad else None
            for i in range(len(head) - 1, 0, -1):
                dx = head[i].backward(dx)
            first = head[0]
        return backward_both(first, dx, res.shortcut, dz, need_input_grad)


#: (layer types in a row, the step that runs them), tried in order at each position
FUSIONS: tuple[tuple[tuple[type[Layer], ...], type[FusedStep]], ...] = (
    ((Conv2d, ReLU, MaxPool2d), ConvReLUMaxPool),
    ((Conv2d, ReLU), ConvReLU),
    ((Linear, ReLU), LinearReLU),
    ((BatchNorm2d, ReLU), BatchNormReLU),
    ((BatchNorm1d, ReLU), BatchNormReLU),
    ((Residual, ReLU), ResidualReLU),
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
