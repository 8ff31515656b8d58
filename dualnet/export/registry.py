"""The converter registry: layer type name -> function that writes the layer into an ONNX graph.

A converter is `fn(layer, graph, x, shape) -> str`: `x` is the name of the layer's input value in
the graph, `shape` the shape of one input example (no batch axis, e.g. (C, H, W)); it adds nodes
through `graph` (an `export.graph.Graph`) and returns the name of the layer's output value.
Converters never import onnx: only the graph builder does, so registering one is free.

Converters are keyed by the layer's type name, the same name `dn.layers.register` and
checkpoints use. Only the exact type matches: a subclass of Conv2d may compute something else,
so it is refused until a converter is registered for it (`register_converter("MyConv")(
converter_for("Conv2d"))` when it truly computes the same).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import DualnetError

Converter = Callable[[Any, Any, str, tuple[int, ...]], str]

CONVERTERS: dict[str, Converter] = {}


def register_converter(layer_type: type | str) -> Callable[[Converter], Converter]:
    """Decorator: make `fn` the ONNX converter of `layer_type` (a class or its name).

        @dn.export.register_converter(MyScale)
        def _(layer, g, x, shape):
            return g.op("Mul", [x, g.weight(layer.factor, "factor")])
    """
    name = layer_type if isinstance(layer_type, str) else getattr(layer_type, "__name__", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_converter: expected a layer class or its name, got {layer_type!r}")

    def decorate(fn: Converter) -> Converter:
        if not callable(fn):
            raise TypeError(f"register_converter({name!r}): {fn!r} is not callable")
        CONVERTERS[name] = fn
        return fn

    return decorate


def converter_for(layer_type: type | str) -> Converter:
    """The converter registered for a layer class or type name; KeyError names what is known."""
    name = layer_type if isinstance(layer_type, str) else layer_type.__name__
    if name not in CONVERTERS:
        raise KeyError(f"no ONNX converter for layer type {name!r}; known: {', '.join(sorted(CONVERTERS))}")
    return CONVERTERS[name]


class ExportError(DualnetError, ValueError):
    """A model that cannot be written as ONNX; the message names the layer and the fix."""


def convert(layer: Any, graph: Any, x: str, shape: tuple[int, ...],
            scoped: bool = True) -> tuple[str, tuple[int, ...]]:
    """Write `layer` into `graph` after input value `x` of example shape `shape`.

    Its values are named under the layer's name (`conv1.weight`) unless `scoped` is False (the
    model itself: "Sequential.conv1.weight" would say nothing).
    Returns (output value name, output example shape). The output shape comes from the layer's
    own `output_shape`, so a model whose layers do not fit the input fails here, naming the layer.
    """
    kind = type(layer).__name__
    where = f"layer {graph.path(layer.name)} ({kind})" if scoped else f"the model ({kind})"
    fn = CONVERTERS.get(kind)
    if fn is None:
        raise ExportError(f"export: {where} has no ONNX converter; register one with "
                          f"dn.export.register_converter({kind}) (known: {', '.join(sorted(CONVERTERS))})")
    try:
        out_shape = tuple(int(d) for d in layer.output_shape(tuple(shape)))
    except ValueError as exc:
        raise ExportError(f"export: {where} does not accept inputs of shape {tuple(shape)}: {exc}") from None
    if not scoped:
        return fn(layer, graph, x, tuple(shape)), out_shape
    with graph.scope(layer.name):
        y = fn(layer, graph, x, tuple(shape))
    return y, out_shape
