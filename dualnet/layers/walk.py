"""The one depth-first walk over a layer tree: everything that visits layers (parameters, buffers,
checkpoints' Dropout RNGs and loadability checks, the gradient check) goes through `walk`, so a
layer nested at any depth in any container is seen the same way by all of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["walk", "random_generators"]


def walk(layer: Any, prefix: str = "", include_self: bool = False) -> Iterator[tuple[str, Any]]:
    """(dotted path, layer) of every sub-layer of `layer` at any depth, depth first, parents before
    their children, in `children()` order ("body.fc1" for fc1 in a Residual's body). With
    include_self, `layer` itself comes first under the path `prefix` ("" by default)."""
    if include_self:
        yield prefix, layer
    for name, child in layer.children():
        path = f"{prefix}.{name}" if prefix else name
        yield path, child
        yield from walk(child, path)


def random_generators(layer: Any) -> list[tuple[str, np.random.Generator]]:
    """(path of the attribute, generator) of every NumPy random generator held by `layer` or any
    sub-layer (Dropout's `rng`, a custom stochastic layer's own, private ones included): the state a
    gradient check must hold fixed and a checkpoint must keep. Each generator is listed once."""
    found: list[tuple[str, np.random.Generator]] = []
    seen: set[int] = set()
    for path, sub in walk(layer, include_self=True):
        for attr, value in vars(sub).items():
            if isinstance(value, np.random.Generator) and id(value) not in seen:
                seen.add(id(value))
                found.append((f"{path}.{attr}" if path else attr, value))
    return found
