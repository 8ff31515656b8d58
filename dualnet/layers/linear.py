"""Linear: the fully connected layer, y = x W^T + b."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import init as _init
from ..errors import UsageError
from .base import WeightedLayer, _positive_int


class Linear(WeightedLayer):
    """y = x W^T + b; x: (N, in_features) -> (N, out_features); weight (out, in)."""

    kind = "fc"

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: str = "he",
                 dtype: Any = np.float32, seed: int | None = None):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        self.init = init
        w = _init.initialize(init, (out_features, in_features), in_features, out_features, _init.rng(seed), dtype)
        self._init_parameters(w, out_features, bias, dtype)

    def config(self) -> dict[str, Any]:
        return dict(in_features=self.in_features, out_features=self.out_features, bias=self.bias is not None)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if tuple(shape) != (self.in_features,):
            raise UsageError(f"{self.name}: expected {self.in_features} input features, got inputs "
                             f"of shape {tuple(shape)}")
        return (self.out_features,)

    def check_input(self, x: Any) -> None:
        """Validate x: (N, in_features) against this layer."""
        self._check_input(x, 2, "(N, in_features)")
        if x.shape[1] != self.in_features:
            raise UsageError(f"{self.name}: expected {self.in_features} input features, got input of "
                             f"shape {tuple(x.shape)}")

    def forward(self, x: Any) -> Any:
        self.check_input(x)
        self._cache = x if self._records() else None
        return self.ops.linear_forward(x, self.weight.data, self.bias_data())

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        """dy: (N, out_features) -> dx (N, in_features), or None if not need_input_grad."""
        return self.ops.linear_backward(dy, self._need_cache(), self.weight.data, *self.grad_buffers(),
                                        need_input_grad)
