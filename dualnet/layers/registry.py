"""The layer registry: layer type names <-> classes, and rebuilding a model from its config.

Checkpoints store each layer as {"type": class name, "name": ..., "config": constructor
arguments}; `from_config` turns that back into a Sequential, refusing unknown types by name.
Containers (Sequential, Residual) store their layers' entries inside their config, and rebuild
them through `build_layer`, so nesting round-trips to any depth.
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from .base import Layer
from .conv import Conv2d
from .elementwise import Dropout, Flatten, LeakyReLU, ReLU, Sigmoid, Tanh
from .linear import Linear
from .norm import BatchNorm1d, BatchNorm2d
from .padding import ConstantPad2d, ReflectionPad2d, ReplicationPad2d, ZeroPad2d
from .pooling import AvgPool2d, GlobalAvgPool2d, MaxPool2d
from .residual import Residual
from .sequential import Sequential
from .softmax import LogSoftmax, Softmax
from .transpose import ConvTranspose2d
from .upsample import Upsample

LAYER_TYPES: dict[str, type[Layer]] = {cls.__name__: cls for cls in
                                       (Conv2d, MaxPool2d, AvgPool2d, GlobalAvgPool2d, Linear, ReLU, LeakyReLU,
                                        Tanh, Sigmoid, Flatten, Dropout, BatchNorm1d, BatchNorm2d, Residual,
                                        Sequential, Softmax, LogSoftmax, ZeroPad2d, ConstantPad2d,
                                        ReflectionPad2d, ReplicationPad2d, ConvTranspose2d, Upsample)}


def register(cls: type[Layer]) -> type[Layer]:
    """Make a layer class saveable and loadable by its class name (usable as a decorator).

    The class rebuilds from `config()` through `cls.from_config` (by default `cls(**config)`).
    Registering a class again under its module and name (a notebook cell or script run twice)
    replaces the earlier definition; another class of the same name is refused."""
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register: {cls!r} is not a subclass of dualnet.layers.Layer")
    known = LAYER_TYPES.get(cls.__name__)
    # dualnet's own layers are never replaced
    redefined = (known is not None and not known.__module__.startswith("dualnet.")
                 and (known.__module__, known.__qualname__) == (cls.__module__, cls.__qualname__))
    if known is not None and known is not cls and not redefined:
        raise UsageError(f"register: a different layer class is already registered as {cls.__name__!r} "
                         f"({known.__module__}.{known.__qualname__}); rename one of them")
    LAYER_TYPES[cls.__name__] = cls
    return cls


def build_layer(entry: Any) -> Layer:
    """One layer from its config entry {"type", "name", "config"}; ValueError names what is wrong."""
    if not isinstance(entry, dict):
        raise UsageError(f"a layer entry must be an object with 'type' and 'config', got {type(entry).__name__}")
    kind = entry.get("type")
    if kind not in LAYER_TYPES:
        raise UsageError(f"unknown layer type {kind!r}; known: {', '.join(sorted(LAYER_TYPES))} "
                         "(a custom layer must be registered with dualnet.layers.register before loading)")
    cfg = entry.get("config", {})
    if not isinstance(cfg, dict):
        raise UsageError(f"{kind}: 'config' must be an object, got {type(cfg).__name__}")
    layer = LAYER_TYPES[kind].from_config(cfg, build_layer)
    name = entry.get("name")
    if name is not None:
        layer.name = str(name)
    return layer


def from_config(config: dict[str, Any]) -> Sequential:
    """Rebuild a Sequential from `Sequential.config()` (checkpoints), validating every entry."""
    return Sequential.from_config(config, build_layer)
