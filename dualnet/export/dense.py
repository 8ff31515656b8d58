"""Converters of Linear, the activations, Flatten and Dropout."""

from __future__ import annotations

from typing import Any

from .registry import register_converter


@register_converter("Linear")
def linear(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    """y = x W^T + b: Gemm with transB=1 on the (out, in) weight, as stored."""
    inputs = [x, g.weight(layer.weight, "weight")]
    if layer.bias is not None:
        inputs.append(g.weight(layer.bias, "bias"))
    return g.op("Gemm", inputs, "gemm", transB=1)


def _elementwise(op_type: str) -> Any:
    def convert(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
        return g.op(op_type, [x], op_type.lower())

    convert.__doc__ = f"The ONNX {op_type} node, elementwise."
    return convert


for _name, _op in (("ReLU", "Relu"), ("Tanh", "Tanh"), ("Sigmoid", "Sigmoid")):
    register_converter(_name)(_elementwise(_op))


@register_converter("LeakyReLU")
def leaky_relu(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    return g.op("LeakyRelu", [x], "leakyrelu", alpha=float(layer.negative_slope))


@register_converter("Flatten")
def flatten(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...), row-major like dualnet's reshape."""
    return g.op("Flatten", [x], "flatten", axis=1)


@register_converter("Dropout")
def dropout(layer: Any, g: Any, x: str, shape: tuple[int, ...]) -> str:
    """Omitted: an exported graph is an inference graph, where dropout is the identity."""
    return x
