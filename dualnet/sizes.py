"""Sizes before allocation: what a model built from shapes a user gives would hold, judged from the
shapes alone, and refused above documented caps before anything large is allocated.

* Parameters: `build_within` builds a model under `dualnet.init.parameter_budget`, so the weight
  that would take the parameters (with their gradients) past `MAX_PARAMETER_BYTES` is refused from
  its shape, before it is drawn.
* Activations: `activation_values` adds up the values every layer outputs for one example, nested
  containers included (a Residual's body and shortcut each take the block's input), from the
  layers' `output_shape` alone; `check_activations` refuses a batch whose activations would pass
  `MAX_ACTIVATION_BYTES`.

Both errors are `SizeLimitError`, naming the option that sets the size, the bytes needed and the cap.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from . import init as _init
from .errors import DualnetError

__all__ = ["MAX_PARAMETER_BYTES", "MAX_ACTIVATION_BYTES", "SizeLimitError", "activation_values",
           "check_activations", "build_within", "gib"]

#: parameters and their gradients of a model built from user-given shapes: 1 GiB (LeNet-5 needs
#: 0.5 MB, resnet20 2 MB; 1 GiB is 134 million float32 parameters)
MAX_PARAMETER_BYTES = 2**30
#: the activations of one forward pass that a command allocates itself (export --verify's batch): 1 GiB
MAX_ACTIVATION_BYTES = 2**30


class SizeLimitError(DualnetError):
    """A model or batch built from user-given shapes would pass a documented size cap (not a
    ValueError: code that turns a misfit into its own message must let this one through)."""


def gib(n: int) -> str:
    """Bytes in words: '3.4 GiB', '120.0 MiB'."""
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"


def activation_values(layer: Any, shape: tuple[int, ...]) -> int:
    """Values `layer` and every layer inside it output for one example of `shape` (no batch axis)."""
    from .layers import Sequential

    total = math.prod(layer.output_shape(tuple(shape)))
    inner = tuple(shape)
    for _, child in layer.children():
        total += activation_values(child, inner)
        if isinstance(layer, Sequential):  # a chain: each child takes the previous one's output
            inner = tuple(child.output_shape(inner))
    return total


def check_activations(model: Any, shape: tuple[int, ...], batch: int, dtype: Any, option: str) -> int:
    """The bytes of a forward pass of `batch` examples of `shape` (input and every layer's output);
    SizeLimitError naming `option` above MAX_ACTIVATION_BYTES (0 for a shape the model does not take)."""
    try:
        values = activation_values(model, shape)
    except ValueError:  # inputs the model does not take: the caller's own checks say why
        return 0
    need = (values + math.prod(shape)) * batch * np.dtype(dtype).itemsize
    if need > MAX_ACTIVATION_BYTES:
        raise SizeLimitError(f"{option}: a forward pass of {batch} inputs of shape {'x'.join(map(str, shape))} "
                             f"would need {gib(need)} of activations, more than the {gib(MAX_ACTIVATION_BYTES)} "
                             f"accepted; give a smaller {option}")
    return need


def build_within(build: Callable[[], Any], what: str, option: str) -> Any:
    """`build()` (a model) under the parameter cap; SizeLimitError naming `what` and `option` when a
    weight would take its parameters and gradients past MAX_PARAMETER_BYTES."""
    def refuse(total: int, weight: tuple[int, ...]) -> SizeLimitError:
        return SizeLimitError(f"{option}: {what} would hold at least {gib(total)} of parameters and gradients "
                              f"(a weight of shape {'x'.join(map(str, weight))}), more than the "
                              f"{gib(MAX_PARAMETER_BYTES)} accepted; give a smaller {option}")

    with _init.parameter_budget(MAX_PARAMETER_BYTES, refuse):
        return build()
