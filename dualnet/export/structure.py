"""Converters of the containers and the batch-normalisation layers: Sequential (nested too),
Residual, BatchNorm2d and BatchNorm1d (eval mode: the running statistics).

The layer classes are looked up by name only, so these converters load whether or not this
copy of dualnet has Residual or BatchNorm yet.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .registry import convert, register_converter


@register_converter("Sequential")
def sequential(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    """The layers in order (the layers themselves, not the fused steps they run as)."""
    for child in layer.layers:
        x, shape = convert(child, g, x, shape)
    return x


@register_converter("Residual")
def residual(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    """Add(body(x), shortcut(x)); a shortcut of None is the identity."""
    body, _ = convert(layer.body, g, x, shape)
    short = x if layer.shortcut is None else convert(layer.shortcut, g, x, shape)[0]
    return g.op("Add", [body, short], "add")


def batchnorm(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    """BatchNormalization with the running mean and variance: the layer in eval mode.

    x: (N, C, H, W) for BatchNorm2d, (N, C) or (N, C, L) for BatchNorm1d. Without affine, the
    scale is one and the shift zero."""
    mean = g.weight(layer.running_mean, "running_mean")
    var = g.weight(layer.running_var, "running_var")
    if getattr(layer, "affine", True) and layer.weight is not None:
        scale, shift = g.weight(layer.weight, "weight"), g.weight(layer.bias, "bias")
    else:
        channels = shape[0]
        scale = g.const(np.ones(channels, np.float32), "weight")
        shift = g.const(np.zeros(channels, np.float32), "bias")
    return g.op("BatchNormalization", [x, scale, shift, mean, var], "batchnorm", epsilon=float(layer.eps))


register_converter("BatchNorm2d")(batchnorm)
register_converter("BatchNorm1d")(batchnorm)
