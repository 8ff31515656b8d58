"""The layer registry: layer type names <-> classes, and rebuilding a model from its config.

Checkpoints store each layer as {"type": class name, "name": ..., "config": constructor
arguments}; `from_config` turns that back into a Sequential, refusing unknown types by name.
"""

from __future__ import annotations

from typing import Any

from .base import Layer
from .conv import Conv2d
from .elementwise import Dropout, Flatten, ReLU, Sigmoid, Tanh
from .linear import Linear
from .pooling import AvgPool2d, MaxPool2d
from .sequential import Sequential

LAYER_TYPES: dict[str, type[Layer]] = {cls.__name__: cls for cls in
                                       (Conv2d, MaxPool2d, AvgPool2d, Linear, ReLU, Tanh, Sigmoid, Flatten,
                                        Dropout)}


def register(cls: type[Layer]) -> type[Layer]:
    """Make a layer class saveable and loadable by its class name (usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register: {cls!r} is not a subclass of dualnet.layers.Layer")
    known = LAYER_TYPES.get(cls.__name__)
    if known is not None and known is not cls:
        raise ValueError(f"register: a different layer class is already registered as {cls.__name__!r} "
                         f"({known.__module__}.{known.__qualname__}); rename one of them")
    LAYER_TYPES[cls.__name__] = cls
    return cls


def from_config(config: dict[str, Any]) -> Sequential:
    """Rebuild a Sequential from `Sequential.config()` (checkpoints), validating every entry."""
    layers = []
    for i, entry in enumerate(config.get("layers", [])):
        kind = entry.get("type")
        if kind not in LAYER_TYPES:
            raise ValueError(f"layer {i}: unknown layer type {kind!r}; known: {', '.join(sorted(LAYER_TYPES))}")
        cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.get("config", {}).items()}
        layer = LAYER_TYPES[kind](**cfg)
        layer.name = entry.get("name", layer.name)
        layers.append(layer)
    shape = config.get("input_shape")
    return Sequential(*layers, input_shape=tuple(shape) if shape else None)
