"""Converters of the spatial layers: Conv2d, MaxPool2d, AvgPool2d, GlobalAvgPool2d.

dualnet's geometry is ONNX's: out = floor((size + p_begin + p_end - d(k-1) - 1) / s) + 1 (ceil with
ceil_mode, whose last window starts inside the input or its leading pad in both), ONNX pads are
[top, left, bottom, right]; a Conv2d with padding="same" exports as auto_pad SAME_UPPER (undilated).
"""

from __future__ import annotations

from typing import Any

from .registry import register_converter


def _pads(padding: tuple[int, int]) -> list[int]:
    ph, pw = padding
    return [ph, pw, ph, pw]


def _conv_pads(layer: Any) -> dict[str, Any]:
    """auto_pad SAME_UPPER for an undilated "same" convolution (onnxruntime refuses a dilated one,
    which gets the same padding written out), else explicit pads."""
    if layer.padding == "same" and tuple(layer.dilation) == (1, 1):
        return {"auto_pad": "SAME_UPPER"}
    left, right, top, bottom = layer.pads
    return {"pads": [top, left, bottom, right]}


@register_converter("Conv2d")
def conv2d(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    """Conv with pads, strides, dilations and group; weight (out, C // groups, kh, kw)."""
    inputs = [x, g.weight(layer.weight, "weight")]
    if layer.bias is not None:
        inputs.append(g.weight(layer.bias, "bias"))
    return g.op("Conv", inputs, "conv", kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                dilations=list(layer.dilation), group=int(layer.groups), **_conv_pads(layer))


@register_converter("MaxPool2d")
def maxpool2d(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    """MaxPool: ONNX pads max pooling with -inf as dualnet does, so padding never wins."""
    return g.op("MaxPool", [x], "maxpool", kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                pads=_pads(layer.padding), ceil_mode=int(layer.ceil_mode), dilations=list(layer.dilation))


@register_converter("AvgPool2d")
def avgpool2d(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    """AveragePool with the layer's count_include_pad and ceil_mode: ONNX's divisor is PyTorch's
    (the window clipped to the padded input), checked against onnxruntime."""
    return g.op("AveragePool", [x], "avgpool", kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                pads=_pads(layer.padding), ceil_mode=int(layer.ceil_mode),
                count_include_pad=int(layer.count_include_pad))


@register_converter("GlobalAvgPool2d")
def global_avgpool2d(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    """(N, C, H, W) -> GlobalAveragePool (N, C, 1, 1) -> Flatten (N, C)."""
    pooled = g.op("GlobalAveragePool", [x], "pool")
    return g.op("Flatten", [pooled], "flatten", axis=1)
