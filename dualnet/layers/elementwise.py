"""Parameter-free layers: the activations (ReLU, Tanh, Sigmoid), Dropout, and Flatten (a reshape)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Layer


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
