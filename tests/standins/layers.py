"""The models engineer's layers as this branch may lack them: BatchNorm2d/1d, GlobalAvgPool2d,
LeakyReLU and Residual, forward only, following PyTorch's semantics and DESIGN.md's attribute
names. `layer_class(name)` prefers the real class, so the export tests run against it once it is
merged; the stand-ins carry the real names because export converters are keyed by type name.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import dualnet as dn
from dualnet.layers import Layer, Parameter


class BatchNorm2d(Layer):
    """Eval-mode batch norm over axis 1: (x - running_mean) / sqrt(running_var + eps) * weight + bias."""

    kind = "bn"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        self.weight = Parameter(np.ones(num_features, np.float32), "weight") if affine else None
        self.bias = Parameter(np.zeros(num_features, np.float32), "bias") if affine else None
        self.running_mean = np.zeros(num_features, np.float32)
        self.running_var = np.ones(num_features, np.float32)

    def own_parameters(self) -> list[tuple[str, Parameter]]:
        return [("weight", self.weight), ("bias", self.bias)] if self.affine else []

    def forward(self, x: Any) -> Any:
        per_channel = (1, -1) + (1,) * (x.ndim - 2)
        y = (x - self.running_mean.reshape(per_channel)) / np.sqrt(self.running_var.reshape(per_channel) + self.eps)
        if self.affine:
            y = y * self.weight.data.reshape(per_channel) + self.bias.data.reshape(per_channel)
        return y.astype(x.dtype)


class BatchNorm1d(BatchNorm2d):
    """The same over (N, C) or (N, C, L)."""


class GlobalAvgPool2d(Layer):
    """(N, C, H, W) -> (N, C): the mean over each plane."""

    kind = "gap"

    def forward(self, x: Any) -> Any:
        return x.mean(axis=(2, 3))

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (shape[0],)


class LeakyReLU(Layer):
    """x where x > 0, negative_slope * x elsewhere."""

    kind = "lrelu"

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Any) -> Any:
        return np.where(x > 0, x, x * x.dtype.type(self.negative_slope))


class Residual(Layer):
    """body(x) + shortcut(x); the identity when shortcut is None."""

    kind = "res"

    def __init__(self, body: Layer, shortcut: Layer | None = None):
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def named_parameters(self, prefix: str = ""):
        yield from self.body.named_parameters(f"{prefix}body.")
        if self.shortcut is not None:
            yield from self.shortcut.named_parameters(f"{prefix}shortcut.")

    def train(self, mode: bool = True) -> Residual:
        self.training = mode
        for part in (self.body, self.shortcut):
            if part is not None:
                part.train(mode)
        return self

    def forward(self, x: Any) -> Any:
        return self.body(x) + (x if self.shortcut is None else self.shortcut(x))

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return self.body.output_shape(shape)


def layer_class(name: str) -> type:
    """dualnet's own class of that name where it exists, else the stand-in above."""
    return getattr(dn.layers, name, None) or globals()[name]


def set_state(layer: Any, attr: str, values: np.ndarray) -> None:
    """Set a parameter (its .data) or a state array of a real or stand-in layer, keeping its dtype."""
    current = getattr(layer, attr)
    if isinstance(current, Parameter):
        current.data = values.astype(current.data.dtype)
    elif isinstance(current, np.ndarray):
        setattr(layer, attr, values.astype(current.dtype))
    else:  # a state holder of the real layer with .data
        current.data = values.astype(current.data.dtype)
