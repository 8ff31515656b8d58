"""Converters of the spatial layers: Conv2d, MaxPool2d, AvgPool2d, GlobalAvgPool2d.

dualnet's geometry is ONNX's with `ceil_mode=0`: out = floor((size + 2p - d(k-1) - 1) / s) + 1,
the same padding on both sides of each axis (ONNX pads are [top, left, bottom, right]).
"""

from __future__ import annotations

from typing import Any

from .registry import register_converter


def _pads(padding: tuple[int, int]) -> list[int]:
    ph, pw = padding
    return [ph, pw, ph, pw]


@register_converter("Conv2d")
def conv2d(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    """Conv with pads, strides, dilations and group; weight (out, C // groups, kh, kw)."""
    inputs = [x, g.weight(layer.weight, "weight")]
    if layer.bias is not None:
        inputs.append(g.weight(layer.bias, "bias"))
    return g.op("Conv", inputs, "conv", kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                pads=_pads(layer.padding), dilations=list(layer.dilation), group=int(layer.groups))


@register_converter("MaxPool2d")
def maxpool2d(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    """MaxPool: ONNX pads max pooling with -inf as dualnet does, so padding never wins."""
    return g.op("MaxPool", [x], "maxpool", kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                pads=_pads(layer.padding), ceil_mode=0)


@register_converter("AvgPool2d")
def avgpool2d(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    """AveragePool with count_include_pad=1: dualnet divides every window by kh * kw, padding
    counted as zeros (with ceil_mode=0 no window reaches past the padding, so the divisor is exact)."""
    return g.op("AveragePool", [x], "avgpool", kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                pads=_pads(layer.padding), ceil_mode=0, count_include_pad=1)


@register_converter("GlobalAvgPool2d")
def global_avgpool2d(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    """(N, C, H, W) -> GlobalAveragePool (N, C, 1, 1) -> Flatten (N, C)."""
    pooled = g.op("GlobalAveragePool", [x], "pool")
    return g.op("Flatten", [pooled], "flatten", axis=1)
