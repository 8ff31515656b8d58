"""Softmax and LogSoftmax along an axis, so an inference graph can end in probabilities (the loss
keeps its own fused softmax cross-entropy; put these after a model's logits only to read them)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Layer


class _Softmax(Layer):
    """Shared body: `dim` is the axis of the distribution (1: the classes of (N, K) logits)."""

    kind = "softmax"
    log = False

    def __init__(self, dim: int = 1):
        super().__init__()
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
            raise ValueError(f"{type(self).__name__}: dim must be an int, got {dim!r}")
        self.dim = int(dim)

    def config(self) -> dict[str, Any]:
        return dict(dim=self.dim)

    def _axis(self, ndim: int) -> int:
        if not -ndim <= self.dim < ndim:
            raise ValueError(f"{self.name}: dim={self.dim} is out of range for a {ndim}-D input; use a dim in "
                             f"[{-ndim}, {ndim - 1}]")
        return self.dim % ndim

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.dim != 0:  # dim 0 is the batch axis, which an example's shape does not have
            self._axis(len(shape) + 1)
        return tuple(shape)

    def forward(self, x: Any) -> Any:
        """x: any shape with a floating dtype -> y like x, each slice along dim a distribution."""
        self._check_input(x, getattr(x, "ndim", -1), "")
        axis = self._axis(x.ndim)
        y = self.ops.softmax_forward(x, axis, self.log)
        self._cache = (y, axis) if self._records() else None
        return y

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        y, axis = self._need_cache()
        return self.ops.softmax_backward(dy, y, axis, self.log) if need_input_grad else None


class Softmax(_Softmax):
    """exp(x) / sum(exp(x)) along `dim`, with the maximum subtracted first (never overflows)."""


class LogSoftmax(_Softmax):
    """x - log(sum(exp(x))) along `dim` (log-sum-exp with the maximum subtracted)."""

    kind = "logsoftmax"
    log = True
