"""Model zoo: LeNet-5, the other networks of the seeds, and CIFAR-style ResNets, built by name.

Every builder takes `input_shape=(C, H, W)` and `num_classes` (feature sizes follow from the
shape), `seed` (initial weights drawn from it, identical on every device) and `dtype`, and records
how it was built in `model.spec` ({"name", "kwargs"}: `get(spec["name"], **spec["kwargs"])`
rebuilds it). `in_channels=` is still accepted as an alias of the shape's C. A model that cannot
take an input raises ValueError naming the layer, the shape it would get and the models that fit.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import UsageError, positive_int, whole_number
from .layers import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Flatten,
    GlobalAvgPool2d,
    Layer,
    Linear,
    MaxPool2d,
    ReLU,
    Residual,
    Sequential,
    Tanh,
    Upsample,
)

__all__ = ["lenet5", "lenet5_classic", "theano_lenet", "tutorial_net", "mlp", "lenet5_separable", "lenet5_bn",
           "digits_net", "digits_cnn", "resnet8", "resnet20", "unet_mini", "get", "names", "describe", "MODELS"]

MNIST_SHAPE = (1, 28, 28)
DIGITS_SHAPE = (1, 8, 8)
CIFAR_SHAPE = (3, 32, 32)

MODELS: dict[str, Callable[..., Sequential]] = {}


class _DoesNotFit(ValueError):
    """A layer of a model cannot take the shape the layers before it give."""


class _Seeds:
    """Per-layer seeds derived from one model seed."""

    def __init__(self, seed: int):
        self.gen = np.random.default_rng(seed)

    def __call__(self) -> int:
        return int(self.gen.integers(2**31))


def _input_shape(model: str, input_shape: Any, in_channels: Any) -> tuple[int, int, int]:
    """The (C, H, W) a builder works with; in_channels (the older argument) replaces C."""
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3 or any(whole_number(v) is None for v in shape):
        raise UsageError(f"{model}: input_shape must be (C, H, W), three positive ints, got {input_shape!r}")
    if in_channels is not None:
        shape = (positive_int(in_channels, "in_channels", model, noun="int"), *shape[1:])
    return int(shape[0]), int(shape[1]), int(shape[2])


def _check_classes(model: str, num_classes: Any) -> int:
    return positive_int(num_classes, "num_classes", model, noun="int")


def _trace(model: str, layers: Sequence[Layer], input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The output shape of `layers` (already named by a Sequential) for one input example;
    _DoesNotFit names the first layer that cannot take what it gets."""
    shape = tuple(input_shape)
    for layer in layers:
        try:
            shape = layer.output_shape(shape)
        except ValueError as exc:
            raise _DoesNotFit(f"{model} cannot take inputs of shape {tuple(input_shape)}: layer {layer.name} "
                              f"({type(layer).__name__}) would get {'x'.join(map(str, shape))} ({exc})") from None
    return shape


def _chain(model: str, input_shape: tuple[int, ...], *layers: Layer) -> tuple[list[Layer], tuple[int, ...]]:
    """Name `layers` as one Sequential would and return them with their output shape."""
    named = Sequential(*layers, fuse=False).layers
    return named, _trace(model, named, input_shape)


@dataclass(frozen=True)
class Build:
    """What every builder starts from, made once by `_builder` from the public arguments: the model's
    `name`, its input `shape` (C, H, W), its class count `k`, the per-layer seeds `s` and `dtype`."""

    name: str
    shape: tuple[int, int, int]
    k: int
    s: _Seeds
    dtype: Any

    def chain(self, *layers: Layer) -> tuple[list[Layer], tuple[int, ...]]:
        """`layers` named as one Sequential would, with their output shape for this input."""
        return _chain(self.name, self.shape, *layers)

    def classifier(self, features: list[Layer], shape: tuple[int, ...], widths: Sequence[int],
                   act: type[Layer] = ReLU, init: str = "he") -> list[Layer]:
        return _classifier(self.name, features, shape, widths, self.s, self.dtype, act, init)

    def model(self, *layers: Layer) -> Sequential:
        return Sequential(*layers, input_shape=self.shape)


#: the arguments every zoo builder takes (keywords), besides input_shape whose default is the builder's
_ARGUMENTS = ("seed", "dtype", "num_classes", "input_shape", "in_channels")


def _builder(name: str, default_shape: tuple[int, int, int]) -> Callable[[Callable[[Build]], Sequential],
                                                                         Callable[..., Sequential]]:
    """Make `fn(b: Build)` the zoo builder `name`: called as `name(seed=0, dtype=np.float32,
    num_classes=10, input_shape=default_shape, in_channels=None)` (keywords), it checks the
    arguments, records `model.spec` and explains inputs that do not fit; registered in MODELS."""

    def wrap(fn: Callable[[Build], Sequential]) -> Callable[..., Sequential]:
        def raw(**kwargs: Any) -> Sequential:
            unknown = sorted(set(kwargs) - set(_ARGUMENTS))
            if unknown:
                raise TypeError(f"{fn.__name__}() got an unexpected keyword argument {unknown[0]!r}")
            shape = _input_shape(name, kwargs.get("input_shape", default_shape), kwargs.get("in_channels"))
            k = _check_classes(name, kwargs.get("num_classes", 10))
            return fn(Build(name, shape, k, _Seeds(kwargs.get("seed", 0)), kwargs.get("dtype", np.float32)))

        @functools.wraps(fn)
        def build(**kwargs: Any) -> Sequential:
            try:
                model = raw(**kwargs)
            except _DoesNotFit as exc:
                shape = _input_shape(name, kwargs.get("input_shape", default_shape), kwargs.get("in_channels"))
                fit = fitting_models(shape)
                raise UsageError(f"{exc}; models that fit {shape}: {', '.join(fit) if fit else 'none'}") from None
            model.spec = {"name": name, "kwargs": _spec_kwargs(name, kwargs)}
            return model

        del build.__wrapped__  # type: ignore[attr-defined]  # the signature is the one below, not fn's
        build.__signature__ = _SIGNATURE.replace(parameters=[  # type: ignore[attr-defined]
            p.replace(default=default_shape) if p.name == "input_shape" else p
            for p in _SIGNATURE.parameters.values()])
        MODELS[name] = build
        _RAW[name] = (raw, default_shape)
        return build

    return wrap


def _signature(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, input_shape: Any = MNIST_SHAPE,
               in_channels: int | None = None) -> Sequential:
    raise NotImplementedError  # only its signature is used: every builder's


_SIGNATURE = inspect.signature(_signature)
#: name -> (the builder without spec and explanations, its default input shape)
_RAW: dict[str, tuple[Callable[..., Sequential], tuple[int, int, int]]] = {}


def _spec_kwargs(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments as JSON values; in_channels folds into input_shape."""
    out = {k: v for k, v in kwargs.items() if k not in ("in_channels", "input_shape")}
    if "dtype" in out:
        out["dtype"] = np.dtype(out["dtype"]).name
    if "input_shape" in kwargs or kwargs.get("in_channels") is not None:
        shape = kwargs.get("input_shape", _RAW[name][1])
        out["input_shape"] = list(_input_shape(name, shape, kwargs.get("in_channels")))
    return out


def fitting_models(input_shape: tuple[int, int, int]) -> list[str]:
    """Names of the zoo's models that take inputs of `input_shape` (C, H, W)."""
    fit = []
    for name, (raw, _) in _RAW.items():
        try:
            raw(input_shape=input_shape)
        except _DoesNotFit:
            continue
        fit.append(name)
    return fit


def _classifier(model: str, features: list[Layer], shape: tuple[int, ...], widths: Sequence[int],
                s: _Seeds, dtype: Any, act: type[Layer] = ReLU, init: str = "he") -> list[Layer]:
    """Flatten, then Linear layers of `widths` (the last one the class scores) with `act` between."""
    layers: list[Layer] = [*features, Flatten()]
    size = math.prod(shape)
    for i, width in enumerate(widths):
        layers.append(Linear(size, width, init=init, dtype=dtype, seed=s()))
        if i + 1 < len(widths):
            layers.append(act())
        size = width
    return layers


# --- LeNet-5 and the seeds' networks ---------------------------------------------------------


@_builder("lenet5", MNIST_SHAPE)
def lenet5(b: Build) -> Sequential:
    """LeNet-5 with ReLU and max pooling (61,706 parameters on 28x28 MNIST).

    conv 1->6 5x5 pad 2, ReLU, maxpool 2; conv 6->16 5x5, ReLU, maxpool 2; flatten 400;
    linear 120, ReLU; linear 84, ReLU; linear 10."""
    s, dtype = b.s, b.dtype
    feats, out = b.chain(Conv2d(b.shape[0], 6, 5, padding=2, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2),
                         Conv2d(6, 16, 5, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2))
    return b.model(*b.classifier(feats, out, (120, 84, b.k)))


@_builder("lenet5-classic", MNIST_SHAPE)
def lenet5_classic(b: Build) -> Sequential:
    """LeNet-5 as LeCun et al. 1998 (tanh, average pooling), without the RBF output layer."""
    s, dtype = b.s, b.dtype
    feats, out = b.chain(Conv2d(b.shape[0], 6, 5, padding=2, init="glorot", dtype=dtype, seed=s()), Tanh(),
                         AvgPool2d(2),
                         Conv2d(6, 16, 5, init="glorot", dtype=dtype, seed=s()), Tanh(), AvgPool2d(2))
    return b.model(*b.classifier(feats, out, (120, 84, b.k), Tanh, "glorot"))


@_builder("theano-lenet", MNIST_SHAPE)
def theano_lenet(b: Build) -> Sequential:
    """The Theano tutorial's LeNet: 20 and 50 5x5 filters, max-pool then tanh, 500 tanh units.

    Each convolution is max-pooled, then tanh; the classifier is softmax over 10."""
    s, dtype = b.s, b.dtype
    feats, out = b.chain(Conv2d(b.shape[0], 20, 5, init="glorot", dtype=dtype, seed=s()), MaxPool2d(2), Tanh(),
                         Conv2d(20, 50, 5, init="glorot", dtype=dtype, seed=s()), MaxPool2d(2), Tanh())
    return b.model(*b.classifier(feats, out, (500, b.k), Tanh, "glorot"))


@_builder("tutorial-net", MNIST_SHAPE)
def tutorial_net(b: Build) -> Sequential:
    """The PyTorch beginners' tutorial net (3x3 kernels) sized for 28x28 inputs."""
    s, dtype = b.s, b.dtype
    feats, out = b.chain(Conv2d(b.shape[0], 6, 3, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2),
                         Conv2d(6, 16, 3, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2))
    return b.model(*b.classifier(feats, out, (120, 84, b.k)))


@_builder("mlp", MNIST_SHAPE)
def mlp(b: Build) -> Sequential:
    """The seeds' fully connected baseline: 784-300-50-10 with ReLU."""
    return b.model(*b.classifier([], b.shape, (300, 50, b.k)))


@_builder("lenet5-separable", MNIST_SHAPE)
def lenet5_separable(b: Build) -> Sequential:
    """LeNet-5 with a depthwise-separable second convolution (5x5 depthwise, 1x1 pointwise).

    The depthwise conv has groups=6; the pointwise conv maps 6->16: the Xception/MobileNet
    factorisation of the seeds' section on convolution types."""
    s, dtype = b.s, b.dtype
    feats, out = b.chain(Conv2d(b.shape[0], 6, 5, padding=2, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2),
                         Conv2d(6, 6, 5, groups=6, dtype=dtype, seed=s()),
                         Conv2d(6, 16, 1, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2))
    return b.model(*b.classifier(feats, out, (120, 84, b.k)))


@_builder("lenet5-bn", MNIST_SHAPE)
def lenet5_bn(b: Build) -> Sequential:
    """LeNet-5 with BatchNorm2d after each convolution (whose bias the norm makes redundant).

    conv 6 5x5 pad 2, BN, ReLU, maxpool 2; conv 16 5x5, BN, ReLU, maxpool 2; linear 120, 84, 10."""
    s, dtype = b.s, b.dtype
    feats, out = b.chain(Conv2d(b.shape[0], 6, 5, padding=2, bias=False, dtype=dtype, seed=s()),
                         BatchNorm2d(6, dtype=dtype), ReLU(), MaxPool2d(2),
                         Conv2d(6, 16, 5, bias=False, dtype=dtype, seed=s()), BatchNorm2d(16, dtype=dtype), ReLU(),
                         MaxPool2d(2))
    return b.model(*b.classifier(feats, out, (120, 84, b.k)))


@_builder("digits-net", DIGITS_SHAPE)
def digits_net(b: Build) -> Sequential:
    """The from-scratch seed's net for 8x8 digits: one 3x3 filter, ReLU, linear 10, ReLU, linear 10.

    conv 1->1 3x3 (no padding, stride 1), ReLU; flatten 36; linear 10 hidden units, ReLU; linear 10
    (the seed's ConvClassifier(img_size=(8, 8), hidden_dim=10, out_dim=10))."""
    feats, out = b.chain(Conv2d(b.shape[0], 1, 3, dtype=b.dtype, seed=b.s()), ReLU())
    return b.model(*b.classifier(feats, out, (10, b.k)))


@_builder("digits-cnn", DIGITS_SHAPE)
def digits_cnn(b: Build) -> Sequential:
    """A small CNN for 8x8 digits (`--data digits`' default): two 3x3 convs, one pool, linear 64.

    conv 1->16 3x3 pad 1, ReLU, maxpool 2; conv 16->32 3x3 pad 1, ReLU; flatten 512; linear 64,
    ReLU; linear 10 (for 8x8 inputs)."""
    s, dtype = b.s, b.dtype
    feats, out = b.chain(Conv2d(b.shape[0], 16, 3, padding=1, dtype=dtype, seed=s()), ReLU(),
                         MaxPool2d(2), Conv2d(16, 32, 3, padding=1, dtype=dtype, seed=s()), ReLU())
    return b.model(*b.classifier(feats, out, (64, b.k)))


# --- an encoder-decoder (U-Net style, skips by addition) ---------------------------------------


@_builder("unet-mini", MNIST_SHAPE)
def unet_mini(b: Build) -> Sequential:
    """A two-level U-Net-style encoder-decoder, skips by addition, with per-pixel class scores averaged.

    conv 3x3 'same'-BN-ReLU (8); then at full size x + up(...): maxpool 2, conv-BN-ReLU (16), and at
    half size x + ConvTranspose2d(32 -> 16, 2, stride 2) of maxpool 2, conv-BN-ReLU (32); a 1x1 conv
    (16 -> 8) and Upsample x2 (nearest) back to full size; ReLU, 1x1 conv to the classes, global
    average pooling. H and W must be multiples of 4 (28x28, 8x8, 32x32)."""
    s, dtype, w = b.s, b.dtype, 8

    def block(cin: int, cout: int) -> list[Layer]:
        return [Conv2d(cin, cout, 3, padding="same", bias=False, dtype=dtype, seed=s()), BatchNorm2d(cout, dtype=dtype),
                ReLU()]

    inner = Residual(Sequential(MaxPool2d(2), *block(2 * w, 4 * w),
                                ConvTranspose2d(4 * w, 2 * w, 2, stride=2, dtype=dtype, seed=s())))
    outer = Residual(Sequential(MaxPool2d(2), *block(w, 2 * w), inner, Conv2d(2 * w, w, 1, dtype=dtype, seed=s()),
                                Upsample(scale_factor=2)))
    layers, _ = b.chain(*block(b.shape[0], w), outer, ReLU(), Conv2d(w, b.k, 1, dtype=dtype, seed=s()),
                        GlobalAvgPool2d())
    return b.model(*layers)


@_builder("fashion-cnn", MNIST_SHAPE)
def fashion_cnn(b: Build) -> Sequential:
    """Two convolutions with batch norm and pooling, the family of Zalando's Fashion-MNIST benchmark
    table that reaches 92.5-93.4% ("2 Conv", "2 Conv+pooling+BN"), narrow enough for a CPU: conv 16
    3x3 pad 1, BN, ReLU, maxpool 2; conv 32 3x3 pad 1, BN, ReLU, maxpool 2; flatten 1568; linear 128,
    ReLU; linear 10 (for 28x28 inputs; 206,970 parameters)."""
    s, dtype = b.s, b.dtype
    feats, out = b.chain(Conv2d(b.shape[0], 16, 3, padding=1, bias=False, dtype=dtype, seed=s()),
                         BatchNorm2d(16, dtype=dtype), ReLU(), MaxPool2d(2),
                         Conv2d(16, 32, 3, padding=1, bias=False, dtype=dtype, seed=s()),
                         BatchNorm2d(32, dtype=dtype), ReLU(), MaxPool2d(2))
    return b.model(*b.classifier(feats, out, (128, b.k)))


# --- CIFAR-style ResNets (He et al. 2016, section 4.2) -----------------------------------------


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


def names() -> list[str]:
    return list(MODELS)


def describe(name: str) -> str:
    """First line of a model's docstring."""
    return (MODELS[name].__doc__ or "").strip().splitlines()[0]


def get(name: str, **kwargs: Any) -> Sequential:
    """Build a model by name, e.g. `get("resnet8", input_shape=(3, 32, 32), num_classes=100, seed=1)`;
    the name and arguments go into `model.spec` so checkpoints can record how it was built."""
    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
    return MODELS[name](**kwargs)
