"""Converters of the real-model layers: ConvTranspose2d, Upsample (Resize), the padding layers (Pad)
and Softmax / LogSoftmax. Every one is checked against onnxruntime (tests/test_export_layers.py).

Upsample maps onto Resize as PyTorch's own exporter does: nearest is `asymmetric` coordinates with
`floor` rounding, bilinear is `linear` with `pytorch_half_pixel` (or `align_corners`). A scale
factor goes in as Resize's scales (ONNX then reads source x as PyTorch does, from 1 / scale); a
size goes in as sizes, the batch and channel axes taken from the input's runtime shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .registry import register_converter


@register_converter("ConvTranspose2d")
def conv_transpose2d(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    """ConvTranspose with pads [top, left, bottom, right], output_padding, dilations, group; weight
    (in, out // groups, kh, kw) as stored (ONNX's layout too)."""
    inputs = [x, g.weight(layer.weight, "weight")]
    if layer.bias is not None:
        inputs.append(g.weight(layer.bias, "bias"))
    ph, pw = layer.padding
    return g.op("ConvTranspose", inputs, "convtranspose", kernel_shape=list(layer.kernel_size),
                strides=list(layer.stride), pads=[ph, pw, ph, pw], output_padding=list(layer.output_padding),
                dilations=list(layer.dilation), group=int(layer.groups))


@register_converter("Upsample")
def upsample(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    attrs: dict[str, Any] = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                             "nearest_mode": "floor"}
    if layer.mode == "bilinear":
        attrs = {"mode": "linear", "coordinate_transformation_mode":
                 "align_corners" if layer.align_corners else "pytorch_half_pixel"}
    if layer.scale_factor is not None:
        scales = g.const(np.array([1.0, 1.0, *layer.scale_factor], np.float32), "scales")
        return g.op("Resize", [x, "", scales], "resize", **attrs)
    batch_channels = g.op("Slice", [g.op("Shape", [x], "shape"), g.const(np.array([0], np.int64), "start"),
                                    g.const(np.array([2], np.int64), "stop")], "nc")
    sizes = g.op("Concat", [batch_channels, g.const(np.array(layer.size, np.int64), "hw")], "sizes", axis=0)
    return g.op("Resize", [x, "", "", sizes], "resize", **attrs)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}


def _pad(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    """Pad with pads [0, 0, top, left, 0, 0, bottom, right] (negative: a crop, as in dualnet)."""
    left, right, top, bottom = layer.padding
    pads = g.const(np.array([0, 0, top, left, 0, 0, bottom, right], np.int64), "pads")
    inputs = [x, pads]
    if layer.mode == "constant":
        inputs.append(g.const(np.array(layer.value, np.float32), "value"))
    return g.op("Pad", inputs, "pad", mode=_PAD_MODES[layer.mode])


for _name in ("ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d"):
    register_converter(_name)(_pad)


@register_converter("Softmax")
def softmax(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    return g.op("Softmax", [x], "softmax", axis=int(layer.dim))


@register_converter("LogSoftmax")
def log_softmax(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    return g.op("LogSoftmax", [x], "logsoftmax", axis=int(layer.dim))
