"""Before a checkpoint is written: would `dn.load` rebuild the same model from it?

`save` asks this before it creates or replaces anything. A model loads back when every layer's
class is the one registered under its name (dn.layers.register), every Parameter a layer holds
is one `parameters()` finds, and `from_config(config)` builds the same layers, parameter names
and shapes, and buffer names, shapes and dtypes. Each refusal names the layer and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import device
from ..errors import CheckpointError
from ..layers import LAYER_TYPES, Layer, build_layer, from_config
from ..layers.base import hidden_parameters
from ..layers.walk import walk

__all__ = ["check_loadable"]

Refuse = Callable[[str], CheckpointError]
FIX_CONFIG = "make its config() return the constructor arguments that rebuild it"


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def check_loadable(model: Layer, config: str, dtype: str, refuse: Refuse,
                   tree: list[tuple[str, Layer]] | None = None) -> Layer:
    """Raise (through `refuse`) unless the file of `model`, whose config JSON is `config` and
    parameter dtype `dtype`, would load back as the same model; returns the model rebuilt from
    `config` (on the host, cast to `dtype`), which `save`'s read-back of the file reuses rather
    than building the same config a second time. `tree`: `walk(model, include_self=True)` as a
    list, when the caller has it (a model may have 10**5 layers: it is walked once)."""
    if tree is None:
        tree = list(walk(model, include_self=True))
    for path, layer in tree[1:]:
        cls = type(layer)
        known = LAYER_TYPES.get(cls.__name__)
        if known is None:
            raise refuse(f"layer {path} is a {_qualified(cls)}, which is not registered, so the file could not be "
                         f"loaded; call dn.layers.register({cls.__name__}) before saving (and before loading)")
        if known is not cls:
            raise refuse(f"layer {path} is a {_qualified(cls)}, but the name {cls.__name__!r} is registered for "
                         f"{_qualified(known)}, which loading would build instead; rename the class and register it")
    # children before their parents: the layer that holds the Parameter is the one named
    for path, layer in reversed(tree):
        hidden = hidden_parameters(layer)
        if hidden:
            where, p = hidden[0]
            raise refuse(f"layer {path or 'model'} holds {p!r} in {where}, which parameters() does not find, so it "
                         "would not be saved; hold it in a public attribute or a list, tuple or dict attribute")
    try:
        with device("cpu"):  # shapes are all this needs: no device memory, whatever the model's device
            rebuilt = from_config(json.loads(config))
            rebuilt.astype(np.dtype(dtype))
    except Exception as exc:  # a custom layer's constructor may raise anything
        path, layer, error = _first_failing(model, exc)
        shown = repr(layer.config())
        shown = shown if len(shown) <= 200 else shown[:197] + "..."
        raise refuse(f"layer {path} ({type(layer).__name__}) cannot be rebuilt from its config() "
                     f"{shown} ({type(error).__name__}: {error}), so the file could not be loaded; "
                     f"{FIX_CONFIG}") from None
    problem = _difference(tree, list(walk(rebuilt, include_self=True)))
    if problem:
        raise refuse(f"the model rebuilt from its config differs from the model: {problem}, so the file would load "
                     f"as another model; {FIX_CONFIG}")
    return rebuilt


def _first_failing(model: Layer, error: Exception) -> tuple[str, Layer, Exception]:
    """The deepest layer whose own config does not rebuild it (the model itself if none does)."""
    found: tuple[str, Layer, Exception] = ("model", model, error)
    for path, layer in walk(model):
        try:
            with device("cpu"):
                build_layer({"type": type(layer).__name__, "config": json.loads(json.dumps(layer.config()))})
        except Exception as exc:  # as above
            # parents come first: a container that fails for its part's sake is followed by that part
            found = (path, layer, exc)
    return found


def _index(tree: list[tuple[str, Layer]]) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    """Layer types, parameter shapes and buffer shapes and dtypes by name, from one walk's layers
    (named as `named_parameters` and `named_buffers` name them)."""
    layers: dict[str, str] = {}
    params: dict[str, Any] = {}
    buffers: dict[str, Any] = {}
    for path, layer in tree:
        if path:
            layers[path] = type(layer).__name__
        for name, p in layer.own_parameters():
            params[f"{path}.{name}" if path else name] = tuple(p.shape)
        for name, b in layer.own_buffers():
            buffers[f"{path}.{name}" if path else name] = (tuple(b.shape), str(b.dtype))
    return layers, params, buffers


def _difference(model: list[tuple[str, Layer]], rebuilt: list[tuple[str, Layer]]) -> str | None:
    """The first difference in layer types, parameters or buffers between two walks (with the
    root), in words; None when none."""
    for what, mine, theirs in zip(("layer", "parameter", "buffer"), _index(model), _index(rebuilt), strict=True):
        for name in mine:
            if name not in theirs:
                return f"{what} {name} of the model is missing from it"
            if mine[name] != theirs[name]:
                return f"{what} {name} is {theirs[name]} there but {mine[name]} in the model"
        for name in theirs:
            if name not in mine:
                return f"it has {what} {name} ({theirs[name]}), which the model has not"
    return None
