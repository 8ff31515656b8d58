"""The reference ops of the fused residual-network steps (layers/fused.py): batch norm followed by a
residual sum and/or a ReLU, and the residual sum followed by a ReLU. Each is declared as the plain
composition of existing reference ops, so a fused step gives the same values as its unfused layers
on every table; faster tables override them (ops/cpu_norm.py; the CUDA table's `bn_apply` kernel
takes the activation and the residual as arguments). ReferenceOps inherits them.

Shapes: x, residual, y, dy, dx: (n, c, ...) (the channel axis 1, as batch norm's); weight, bias,
running statistics: (c,). `act` is None or "relu".
"""

from __future__ import annotations

from typing import Any


class _BatchNormActSaved:
    """What the reference's batchnorm_act_forward keeps for its backward: batchnorm_forward's own
    `saved`, the output y (its ReLU mask) when act is "relu", and whether a residual was added."""

    __slots__ = ("bn", "y", "act", "has_residual")

    def __init__(self, bn: Any, y: Any, act: str | None, has_residual: bool):
        self.bn, self.y, self.act, self.has_residual = bn, y, act, has_residual


class FusedOps:
    """Fused residual-network ops of the reference table (see ops/reference.py for the contract)."""

    xp: Any

    # declared by ReferenceOps; stubs for the type checker
    def batchnorm_forward(self, x, weight, bias, running_mean, running_var, eps: float, momentum: float):
        raise NotImplementedError  # pragma: no cover - ReferenceOps defines it

    def batchnorm_eval(self, x, weight, bias, running_mean, running_var, eps: float):
        raise NotImplementedError  # pragma: no cover - ReferenceOps defines it

    def batchnorm_backward(self, dy, saved, weight, wgrad, bgrad, need_dx: bool = True):
        raise NotImplementedError  # pragma: no cover - ReferenceOps defines it

    def relu_forward(self, x):
        raise NotImplementedError  # pragma: no cover - ReferenceOps defines it

    def relu_backward(self, dy, y):
        raise NotImplementedError  # pragma: no cover - ReferenceOps defines it

    # --- batch norm + residual sum + ReLU ---------------------------------------------------

    def batchnorm_act_forward(self, x, weight, bias, running_mean, running_var, eps: float, momentum: float,
                              act: str | None = "relu", residual=None):
        """Training-mode act(batchnorm(x) + residual): (y like x, saved).

        As batchnorm_forward (batch statistics, running statistics updated in place), then the
        residual (like x, or None) added, then `act` (None or "relu"). `saved` is this table's,
        for batchnorm_act_backward."""
        y, saved = self.batchnorm_forward(x, weight, bias, running_mean, running_var, eps, momentum)
        if residual is not None:
            y = y + residual
        if act == "relu":
            y = self.relu_forward(y)
        return y, _BatchNormActSaved(saved, y if act == "relu" else None, act, residual is not None)

    def batchnorm_act_backward(self, dy, saved, weight, wgrad, bgrad, need_dx: bool = True):
        """dy like x -> (dx like x or None, dresidual like x or None); the parameter gradients are
        added into wgrad and bgrad as batchnorm_backward adds them.

        dresidual, the gradient of the residual added before the activation (relu_backward(dy, y)
        with a ReLU, else dy), is None when the forward had no residual; dx and the parameter
        gradients are batchnorm_backward's of that same gradient."""
        dz = self.relu_backward(dy, saved.y) if saved.act == "relu" else dy
        dx = self.batchnorm_backward(dz, saved.bn, weight, wgrad, bgrad, need_dx)
        return dx, (dz if saved.has_residual else None)

    def batchnorm_act_eval(self, x, weight, bias, running_mean, running_var, eps: float, act: str | None = "relu",
                           residual=None):
        """Eval-mode act(batchnorm_eval(x) + residual) -> y like x (the running statistics; nothing
        kept: a caller that differentiates it uses relu_backward and batchnorm_eval_backward)."""
        y = self.batchnorm_eval(x, weight, bias, running_mean, running_var, eps)
        if residual is not None:
            y = y + residual
        return self.relu_forward(y) if act == "relu" else y

    # --- residual sum + ReLU ----------------------------------------------------------------

    def add_relu_forward(self, a, b):
        """relu(a + b) for a, b of one shape (a residual block's two paths) -> y of that shape;
        its gradient, for both a and b, is relu_backward(dy, y)."""
        return self.relu_forward(a + b)
