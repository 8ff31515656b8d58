"""Model zoo: LeNet-5, the other networks of the seeds, and CIFAR-style ResNets, built by name.

Every builder takes `input_shape=(C, H, W)` and `num_classes` (feature sizes follow from the
shape), `seed` (initial weights drawn from it, identical on every device) and `dtype`, and records
how it was built in `model.spec` ({"name", "kwargs"}: `get(spec["name"], **spec["kwargs"])`
rebuilds it). `in_channels=` is still accepted as an alias of the shape's C. A model that cannot
take an input raises ValueError naming the layer, the shape it would get and the models that fit.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

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
    if shape is None or len(shape) != 3 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in shape):
        raise ValueError(f"{model}: input_shape must be (C, H, W), three positive ints, got {input_shape!r}")
    if in_channels is not None:
        if not isinstance(in_channels, (int, np.integer)) or isinstance(in_channels, bool) or in_channels < 1:
            raise ValueError(f"{model}: in_channels must be a positive int, got {in_channels!r}")
        shape = (int(in_channels), *shape[1:])
    return int(shape[0]), int(shape[1]), int(shape[2])


def _check_classes(model: str, num_classes: Any) -> int:
    if not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"{model}: num_classes must be a positive int, got {num_classes!r}")
    return int(num_classes)


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


def _builder(name: str) -> Callable[[Callable[..., Sequential]], Callable[..., Sequential]]:
    """Register a builder under `name`; calls record `spec` and explain inputs that do not fit."""

    def wrap(fn: Callable[..., Sequential]) -> Callable[..., Sequential]:
        @functools.wraps(fn)
        def build(**kwargs: Any) -> Sequential:
            try:
                model = fn(**kwargs)
            except _DoesNotFit as exc:
                shape = _input_shape(name, kwargs.get("input_shape", _default_shape(fn)), kwargs.get("in_channels"))
                fit = fitting_models(shape)
                raise ValueError(f"{exc}; models that fit {shape}: {', '.join(fit) if fit else 'none'}") from None
            model.spec = {"name": name, "kwargs": _spec_kwargs(name, kwargs)}
            return model

        MODELS[name] = build
        return build

    return wrap


def _default_shape(fn: Callable[..., Any]) -> Any:
    import inspect  # noqa: PLC0415 - only on the error path

    return inspect.signature(fn).parameters["input_shape"].default


def _spec_kwargs(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments as JSON values; in_channels folds into input_shape."""
    out = {k: v for k, v in kwargs.items() if k not in ("in_channels", "input_shape")}
    if "dtype" in out:
        out["dtype"] = np.dtype(out["dtype"]).name
    if "input_shape" in kwargs or kwargs.get("in_channels") is not None:
        shape = kwargs.get("input_shape", _default_shape(MODELS[name].__wrapped__))  # type: ignore[attr-defined]
        out["input_shape"] = list(_input_shape(name, shape, kwargs.get("in_channels")))
    return out


def fitting_models(input_shape: tuple[int, int, int]) -> list[str]:
    """Names of the zoo's models that take inputs of `input_shape` (C, H, W)."""
    fit = []
    for name, build in MODELS.items():
        try:
            build.__wrapped__(input_shape=input_shape)  # type: ignore[attr-defined]
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


@_builder("lenet5")
def lenet5(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, input_shape: Any = MNIST_SHAPE,
           in_channels: int | None = None) -> Sequential:
    """LeNet-5 with ReLU and max pooling (61,706 parameters on 28x28 MNIST).

    conv 1->6 5x5 pad 2, ReLU, maxpool 2; conv 6->16 5x5, ReLU, maxpool 2; flatten 400;
    linear 120, ReLU; linear 84, ReLU; linear 10."""
    shape, k, s = _input_shape("lenet5", input_shape, in_channels), _check_classes("lenet5", num_classes), _Seeds(seed)
    feats, out = _chain("lenet5", shape,
                        Conv2d(shape[0], 6, 5, padding=2, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2),
                        Conv2d(6, 16, 5, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2))
    return Sequential(*_classifier("lenet5", feats, out, (120, 84, k), s, dtype), input_shape=shape)


@_builder("lenet5-classic")
def lenet5_classic(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, input_shape: Any = MNIST_SHAPE,
                   in_channels: int | None = None) -> Sequential:
    """LeNet-5 as LeCun et al. 1998 (tanh, average pooling), without the RBF output layer."""
    name = "lenet5-classic"
    shape, k, s = _input_shape(name, input_shape, in_channels), _check_classes(name, num_classes), _Seeds(seed)
    feats, out = _chain(name, shape,
                        Conv2d(shape[0], 6, 5, padding=2, init="glorot", dtype=dtype, seed=s()), Tanh(),
                        AvgPool2d(2),
                        Conv2d(6, 16, 5, init="glorot", dtype=dtype, seed=s()), Tanh(), AvgPool2d(2))
    return Sequential(*_classifier(name, feats, out, (120, 84, k), s, dtype, Tanh, "glorot"), input_shape=shape)


@_builder("theano-lenet")
def theano_lenet(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, input_shape: Any = MNIST_SHAPE,
                 in_channels: int | None = None) -> Sequential:
    """The Theano tutorial's LeNet: 20 and 50 5x5 filters, max-pool then tanh, 500 tanh units.

    Each convolution is max-pooled, then tanh; the classifier is softmax over 10."""
    name = "theano-lenet"
    shape, k, s = _input_shape(name, input_shape, in_channels), _check_classes(name, num_classes), _Seeds(seed)
    feats, out = _chain(name, shape,
                        Conv2d(shape[0], 20, 5, init="glorot", dtype=dtype, seed=s()), MaxPool2d(2), Tanh(),
                        Conv2d(20, 50, 5, init="glorot", dtype=dtype, seed=s()), MaxPool2d(2), Tanh())
    return Sequential(*_classifier(name, feats, out, (500, k), s, dtype, Tanh, "glorot"), input_shape=shape)


@_builder("tutorial-net")
def tutorial_net(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, input_shape: Any = MNIST_SHAPE,
                 in_channels: int | None = None) -> Sequential:
    """The PyTorch beginners' tutorial net (3x3 kernels) sized for 28x28 inputs."""
    name = "tutorial-net"
    shape, k, s = _input_shape(name, input_shape, in_channels), _check_classes(name, num_classes), _Seeds(seed)
    feats, out = _chain(name, shape,
                        Conv2d(shape[0], 6, 3, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2),
                        Conv2d(6, 16, 3, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2))
    return Sequential(*_classifier(name, feats, out, (120, 84, k), s, dtype), input_shape=shape)


@_builder("mlp")
def mlp(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, input_shape: Any = MNIST_SHAPE,
        in_channels: int | None = None) -> Sequential:
    """The seeds' fully connected baseline: 784-300-50-10 with ReLU."""
    shape, k, s = _input_shape("mlp", input_shape, in_channels), _check_classes("mlp", num_classes), _Seeds(seed)
    return Sequential(*_classifier("mlp", [], shape, (300, 50, k), s, dtype), input_shape=shape)


@_builder("lenet5-separable")
def lenet5_separable(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, input_shape: Any = MNIST_SHAPE,
                     in_channels: int | None = None) -> Sequential:
    """LeNet-5 with a depthwise-separable second convolution (5x5 depthwise, 1x1 pointwise).

    The depthwise conv has groups=6; the pointwise conv maps 6->16: the Xception/MobileNet
    factorisation of the seeds' section on convolution types."""
    name = "lenet5-separable"
    shape, k, s = _input_shape(name, input_shape, in_channels), _check_classes(name, num_classes), _Seeds(seed)
    feats, out = _chain(name, shape,
                        Conv2d(shape[0], 6, 5, padding=2, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2),
                        Conv2d(6, 6, 5, groups=6, dtype=dtype, seed=s()),
                        Conv2d(6, 16, 1, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2))
    return Sequential(*_classifier(name, feats, out, (120, 84, k), s, dtype), input_shape=shape)


@_builder("lenet5-bn")
def lenet5_bn(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, input_shape: Any = MNIST_SHAPE,
              in_channels: int | None = None) -> Sequential:
    """LeNet-5 with BatchNorm2d after each convolution (whose bias the norm makes redundant).

    conv 6 5x5 pad 2, BN, ReLU, maxpool 2; conv 16 5x5, BN, ReLU, maxpool 2; linear 120, 84, 10."""
    name = "lenet5-bn"
    shape, k, s = _input_shape(name, input_shape, in_channels), _check_classes(name, num_classes), _Seeds(seed)
    feats, out = _chain(name, shape,
                        Conv2d(shape[0], 6, 5, padding=2, bias=False, dtype=dtype, seed=s()),
                        BatchNorm2d(6, dtype=dtype), ReLU(), MaxPool2d(2),
                        Conv2d(6, 16, 5, bias=False, dtype=dtype, seed=s()), BatchNorm2d(16, dtype=dtype), ReLU(),
                        MaxPool2d(2))
    return Sequential(*_classifier(name, feats, out, (120, 84, k), s, dtype), input_shape=shape)


@_builder("digits-net")
def digits_net(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, input_shape: Any = DIGITS_SHAPE,
               in_channels: int | None = None) -> Sequential:
    """The from-scratch seed's net for 8x8 digits: one 3x3 filter, ReLU, linear 10, ReLU, linear 10.

    conv 1->1 3x3 (no padding, stride 1), ReLU; flatten 36; linear 10 hidden units, ReLU; linear 10
    (the seed's ConvClassifier(img_size=(8, 8), hidden_dim=10, out_dim=10))."""
    name = "digits-net"
    shape, k, s = _input_shape(name, input_shape, in_channels), _check_classes(name, num_classes), _Seeds(seed)
    feats, out = _chain(name, shape, Conv2d(shape[0], 1, 3, dtype=dtype, seed=s()), ReLU())
    return Sequential(*_classifier(name, feats, out, (10, k), s, dtype), input_shape=shape)


@_builder("digits-cnn")
def digits_cnn(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, input_shape: Any = DIGITS_SHAPE,
               in_channels: int | None = None) -> Sequential:
    """A small CNN for 8x8 digits (`--data digits`' default): two 3x3 convs, one pool, linear 64.

    conv 1->16 3x3 pad 1, ReLU, maxpool 2; conv 16->32 3x3 pad 1, ReLU; flatten 512; linear 64,
    ReLU; linear 10 (for 8x8 inputs)."""
    name = "digits-cnn"
    shape, k, s = _input_shape(name, input_shape, in_channels), _check_classes(name, num_classes), _Seeds(seed)
    feats, out = _chain(name, shape, Conv2d(shape[0], 16, 3, padding=1, dtype=dtype, seed=s()), ReLU(),
                        MaxPool2d(2), Conv2d(16, 32, 3, padding=1, dtype=dtype, seed=s()), ReLU())
    return Sequential(*_classifier(name, feats, out, (64, k), s, dtype), input_shape=shape)


# --- an encoder-decoder (U-Net style, skips by addition) ---------------------------------------


@_builder("unet-mini")
def unet_mini(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, input_shape: Any = MNIST_SHAPE,
              in_channels: int | None = None, width: int = 8) -> Sequential:
    """A two-level U-Net-style encoder-decoder, skips by addition, with per-pixel class scores averaged.

    conv 3x3 'same'-BN-ReLU (width w); then at full size x + up(...): maxpool 2, conv-BN-ReLU (2w),
    and at half size x + ConvTranspose2d(4w -> 2w, 2, stride 2) of maxpool 2, conv-BN-ReLU (4w);
    a 1x1 conv (2w -> w) and Upsample x2 (nearest) back to full size; ReLU, 1x1 conv to the classes,
    global average pooling. H and W must be multiples of 4 (28x28, 8x8, 32x32)."""
    name = "unet-mini"
    shape, k, s = _input_shape(name, input_shape, in_channels), _check_classes(name, num_classes), _Seeds(seed)
    w = width

    def block(cin: int, cout: int) -> list[Layer]:
        return [Conv2d(cin, cout, 3, padding="same", bias=False, dtype=dtype, seed=s()), BatchNorm2d(cout, dtype=dtype),
                ReLU()]

    inner = Residual(Sequential(MaxPool2d(2), *block(2 * w, 4 * w),
                                ConvTranspose2d(4 * w, 2 * w, 2, stride=2, dtype=dtype, seed=s())))
    outer = Residual(Sequential(MaxPool2d(2), *block(w, 2 * w), inner, Conv2d(2 * w, w, 1, dtype=dtype, seed=s()),
                                Upsample(scale_factor=2)))
    layers, _ = _chain(name, shape, *block(shape[0], w), outer, ReLU(), Conv2d(w, k, 1, dtype=dtype, seed=s()),
                       GlobalAvgPool2d())
    return Sequential(*layers, input_shape=shape)


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


def _resnet(name: str, blocks: int, seed: int, dtype: Any, num_classes: int, input_shape: Any,
            in_channels: int | None) -> Sequential:
    shape, k, s = _input_shape(name, input_shape, in_channels), _check_classes(name, num_classes), _Seeds(seed)
    layers: list[Layer] = [Conv2d(shape[0], 16, 3, padding=1, bias=False, dtype=dtype, seed=s()),
                           BatchNorm2d(16, dtype=dtype), ReLU()]
    cin = 16
    for stage, cout in enumerate((16, 32, 64)):
        for b in range(blocks):
            stride = 2 if stage > 0 and b == 0 else 1
            layers += [_basic_block(cin, cout, stride, s, dtype), ReLU()]
            cin = cout
    feats, _ = _chain(name, shape, *layers, GlobalAvgPool2d())
    return Sequential(*feats, Linear(64, k, dtype=dtype, seed=s()), input_shape=shape)


@_builder("resnet8")
def resnet8(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, input_shape: Any = CIFAR_SHAPE,
            in_channels: int | None = None) -> Sequential:
    """CIFAR-style ResNet-8: conv-BN-ReLU stem, 3 stages (16, 32, 64 channels) of 1 residual block.

    Each block is two 3x3 conv-BN with a ReLU between and after the sum; stages 2 and 3 halve the
    size (strided 1x1 conv + BN shortcut); global average pooling, linear to the classes."""
    return _resnet("resnet8", 1, seed, dtype, num_classes, input_shape, in_channels)


@_builder("resnet20")
def resnet20(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, input_shape: Any = CIFAR_SHAPE,
             in_channels: int | None = None) -> Sequential:
    """CIFAR-style ResNet-20: as resnet8 with 3 residual blocks per stage (He et al. 2016).

    Shortcuts that change the shape are strided 1x1 conv + BN ("option B")."""
    return _resnet("resnet20", 3, seed, dtype, num_classes, input_shape, in_channels)


def names() -> list[str]:
    return list(MODELS)


def describe(name: str) -> str:
    """First line of a model's docstring."""
    return (MODELS[name].__doc__ or "").strip().splitlines()[0]


def get(name: str, **kwargs: Any) -> Sequential:
    """Build a model by name, e.g. `get("resnet8", input_shape=(3, 32, 32), num_classes=100, seed=1)`;
    the name and arguments go into `model.spec` so checkpoints can record how it was built."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
    return MODELS[name](**kwargs)
