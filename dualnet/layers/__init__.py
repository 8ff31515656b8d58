"""Layers with hand-written backward passes (no autograd tape).

Protocol: `y = layer(x)` runs forward and keeps what backward needs; `dx = layer.backward(dy)`
returns dL/dx and ADDS parameter gradients into `param.grad`. Every layer computes with the op
table of the device its parameters live on (`layer.device`), so one body of code serves NumPy,
CuPy and the emulator.
"""

from __future__ import annotations

from .base import Layer, Parameter
from .conv import Conv2d
from .elementwise import Dropout, Flatten, ReLU, Sigmoid, Tanh
from .linear import Linear
from .pooling import AvgPool2d, MaxPool2d

# private base classes that dualnet.plots.network imports from here
from .elementwise import _Activation  # noqa: F401
from .pooling import _Pool2d  # noqa: F401

__all__ = ["Parameter", "Layer", "Conv2d", "MaxPool2d", "AvgPool2d", "Linear", "ReLU", "Tanh",
           "Sigmoid", "Flatten", "Dropout", "Sequential", "LAYER_TYPES"]

from ..sequential import Sequential  # noqa: E402  (Sequential builds on the layers above)

LAYER_TYPES: dict[str, type] = {cls.__name__: cls for cls in
                                (Conv2d, MaxPool2d, AvgPool2d, Linear, ReLU, Tanh, Sigmoid, Flatten, Dropout)}
