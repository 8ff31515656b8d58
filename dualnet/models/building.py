"""The zoo's machinery: the `_builder` decorator every model builder wears, the registry
(MODELS), the shape checks that explain a model which does not fit, and `get`/`names`/`describe`."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UsageError, positive_int, whole_number
from ..layers import (
    Flatten,
    Layer,
    Linear,
    ReLU,
    Sequential,
)

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
