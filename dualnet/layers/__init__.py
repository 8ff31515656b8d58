"""Layers with hand-written backward passes (no autograd tape).

Protocol: `y = layer(x)` runs forward and keeps what backward needs; `dx = layer.backward(dy)`
returns dL/dx and ADDS parameter gradients into `param.grad`. Every layer computes with the op
table of the device its parameters live on (`layer.device`), so one body of code serves NumPy,
CuPy and the emulator.
"""

from __future__ import annotations

from .base import Layer, Parameter
from .conv import Conv2d
from .elementwise import Dropout, Flatten, LeakyReLU, ReLU, Sigmoid, Tanh
from .grad_mode import grad_enabled, no_grad
from .linear import Linear
from .norm import BatchNorm1d, BatchNorm2d
from .padding import ConstantPad2d, ReflectionPad2d, ReplicationPad2d, ZeroPad2d
from .pooling import AvgPool2d, GlobalAvgPool2d, MaxPool2d
from .registry import LAYER_TYPES, build_layer, from_config, register
from .residual import Residual
from .sequential import Sequential
from .softmax import LogSoftmax, Softmax
from .transpose import ConvTranspose2d
from .upsample import Upsample

__all__ = ["Parameter", "Layer", "Conv2d", "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "Linear", "ReLU",
           "LeakyReLU", "Tanh", "Sigmoid", "Flatten", "Dropout", "BatchNorm1d", "BatchNorm2d", "Residual",
           "Sequential", "Softmax", "LogSoftmax", "ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d",
           "ConvTranspose2d", "Upsample", "no_grad", "grad_enabled", "LAYER_TYPES", "register", "build_layer",
           "from_config"]
