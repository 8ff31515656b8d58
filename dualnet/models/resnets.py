"""CIFAR-style ResNets (He et al. 2016, section 4.2): resnet8 and resnet20."""

from __future__ import annotations

from typing import Any

from ..layers import (
    BatchNorm2d,
    Conv2d,
    GlobalAvgPool2d,
    Layer,
    Linear,
    ReLU,
    Residual,
    Sequential,
)
from .building import CIFAR_SHAPE, Build, _builder, _Seeds


def _basic_block(cin: int, cout: int, stride: int, s: _Seeds, dtype: Any) -> Residual:
    """conv 3x3 (stride) - BN - ReLU - conv 3x3 - BN, plus the input (a strided 1x1 conv + BN
    where the shape changes); the ReLU after the sum is the next layer of the stage."""
    body = Sequential(Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False, dtype=dtype, seed=s()),
                      BatchNorm2d(cout, dtype=dtype), ReLU(),
                      Conv2d(cout, cout, 3, padding=1, bias=False, dtype=dtype, seed=s()),
                      BatchNorm2d(cout, dtype=dtype))
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = Sequential(Conv2d(cin, cout, 1, stride=stride, bias=False, dtype=dtype, seed=s()),
                              BatchNorm2d(cout, dtype=dtype))
    return Residual(body, shortcut)


def _resnet(b: Build, blocks: int) -> Sequential:
    s, dtype = b.s, b.dtype
    layers: list[Layer] = [Conv2d(b.shape[0], 16, 3, padding=1, bias=False, dtype=dtype, seed=s()),
                           BatchNorm2d(16, dtype=dtype), ReLU()]
    cin = 16
    for stage, cout in enumerate((16, 32, 64)):
        for i in range(blocks):
            stride = 2 if stage > 0 and i == 0 else 1
            layers += [_basic_block(cin, cout, stride, s, dtype), ReLU()]
            cin = cout
    feats, _ = b.chain(*layers, GlobalAvgPool2d())
    return b.model(*feats, Linear(64, b.k, dtype=dtype, seed=s()))


@_builder("resnet8", CIFAR_SHAPE)
def resnet8(b: Build) -> Sequential:
    """CIFAR-style ResNet-8: conv-BN-ReLU stem, 3 stages (16, 32, 64 channels) of 1 residual block.

    Each block is two 3x3 conv-BN with a ReLU between and after the sum; stages 2 and 3 halve the
    size (strided 1x1 conv + BN shortcut); global average pooling, linear to the classes."""
    return _resnet(b, 1)


@_builder("resnet20", CIFAR_SHAPE)
def resnet20(b: Build) -> Sequential:
    """CIFAR-style ResNet-20: as resnet8 with 3 residual blocks per stage (He et al. 2016).

    Shortcuts that change the shape are strided 1x1 conv + BN ("option B")."""
    return _resnet(b, 3)
