"""fit's checks on a model: where NaN/inf first appears, finite gradients, gradient clipping, and
the dtype the data must follow."""

from __future__ import annotations

from typing import Any

import numpy as np


def _first_nonfinite_layer(model: Any, images: Any, labels: Any) -> str:
    """Re-run the failing batch layer by layer to name where NaN/inf first appears."""
    xp = model.device.xp
    for name, p in model.named_parameters():
        if not bool(xp.isfinite(p.data).all()):
            return f"parameter {name}"
    x = images
    for layer in getattr(model, "layers", [model]):
        x = layer.forward(x)
        if not bool(xp.isfinite(x).all()):
            return f"layer {layer.name} (its output)"
    for name, p in reversed(list(model.named_parameters())):
        if not bool(xp.isfinite(p.grad).all()):
            return f"the gradient of {name}"
    return "the loss (every layer output was finite)"


def _parameter_dtype(model: Any) -> np.dtype:
    """The dtype of the model's parameters (float32 for a model without any)."""
    first = next(iter(model.parameters()), None)
    return np.dtype(first.data.dtype) if first is not None else np.dtype(np.float32)


def _grads_finite(model: Any) -> bool:
    xp = model.device.xp
    return all(bool(xp.isfinite(p.grad).all()) for p in model.parameters())


def _clip(model: Any, max_norm: float) -> None:
    """Scale all gradients together so that their global L2 norm is at most max_norm."""
    xp = model.device.xp
    total = float(xp.sqrt(sum((p.grad.astype(xp.float64) ** 2).sum() for p in model.parameters())))
    if total > max_norm:
        scale = max_norm / (total + 1e-12)
        for p in model.parameters():
            p.grad *= scale
