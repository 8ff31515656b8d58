"""Parameter-free layers: the activations (ReLU, LeakyReLU, Tanh, Sigmoid), Dropout, and Flatten (a reshape)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Layer


class _Activation(Layer):
    """Elementwise activation whose backward needs only its output y."""

    def apply(self, ops: Any, x: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def gradient(self, ops: Any, dy: Any, y: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Any) -> Any:
        y = self.apply(self.ops, x)
        self._cache = y if self._records() else None
        return y

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        y = self._need_cache()
        return self.gradient(self.ops, dy, y) if need_input_grad else None


class ReLU(_Activation):
    """max(x, 0) elementwise; x: any shape."""

    kind = "relu"

    def apply(self, ops: Any, x: Any) -> Any:
        return ops.relu_forward(x)

    def gradient(self, ops: Any, dy: Any, y: Any) -> Any:
        return ops.relu_backward(dy, y)


class LeakyReLU(Layer):
    """x where x > 0, else negative_slope * x, elementwise; x: any shape.

    Backward reads the input (not the output): with a negative slope the output's sign no
    longer tells which side of 0 the input was on."""

    kind = "lrelu"

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        if not (isinstance(negative_slope, (int, float)) and not isinstance(negative_slope, bool)
                and np.isfinite(negative_slope)):
            raise ValueError(f"LeakyReLU: negative_slope must be a finite number, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def config(self) -> dict[str, Any]:
        return dict(negative_slope=self.negative_slope)

    def forward(self, x: Any) -> Any:
        self._cache = x if self._records() else None
        return self.ops.leaky_relu_forward(x, self.negative_slope)

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        x = self._need_cache()
        return self.ops.leaky_relu_backward(dy, x, self.negative_slope) if need_input_grad else None


class Tanh(_Activation):
    """tanh(x) elementwise; x: any shape."""

    kind = "tanh"

    def apply(self, ops: Any, x: Any) -> Any:
        return ops.tanh_forward(x)

    def gradient(self, ops: Any, dy: Any, y: Any) -> Any:
        return ops.tanh_backward(dy, y)


class Sigmoid(_Activation):
    """1 / (1 + exp(-x)) elementwise; x: any shape."""

    kind = "sigmoid"

    def apply(self, ops: Any, x: Any) -> Any:
        return ops.sigmoid_forward(x)

    def gradient(self, ops: Any, dy: Any, y: Any) -> Any:
        return ops.sigmoid_backward(dy, y)


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...)."""

    kind = "flatten"

    def forward(self, x: Any) -> Any:
        self._cache = tuple(x.shape) if self._records() else None
        # the size, not -1: NumPy cannot infer -1 for an empty batch
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        shape = self._need_cache()
        return dy.reshape(shape) if need_input_grad else None

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (int(np.prod(shape)),)


class Dropout(Layer):
    """Inverted dropout: zero with probability p while training, identity in eval mode."""

    kind = "dropout"

    def __init__(self, p: float = 0.5, seed: int = 0):
        super().__init__()
        # any real number (np.float32(0.5) included), not a bool
        if not (isinstance(p, (int, float, np.integer, np.floating)) and not isinstance(p, bool) and 0.0 <= p < 1.0):
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

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        mask = self._need_cache()
        if not need_input_grad:
            return None
        return dy if isinstance(mask, str) else dy * mask
