"""Model zoo: LeNet-5 and the other networks of the seeds, built by name.

Every builder takes `seed` (initial weights drawn from it, identical on every device) and
`dtype`, and records how it was built in `model.spec` so a checkpoint can name it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .layers import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, Tanh

__all__ = ["lenet5", "lenet5_classic", "theano_lenet", "tutorial_net", "mlp", "lenet5_separable",
           "get", "names", "describe", "MODELS"]

MNIST_SHAPE = (1, 28, 28)


class _Seeds:
    """Per-layer seeds derived from one model seed."""

    def __init__(self, seed: int):
        self.gen = np.random.default_rng(seed)

    def __call__(self) -> int:
        return int(self.gen.integers(2**31))


def lenet5(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, in_channels: int = 1) -> Sequential:
    """LeNet-5 with ReLU and max pooling (61,706 parameters on 28x28 MNIST).

    conv 1->6 5x5 pad 2, ReLU, maxpool 2; conv 6->16 5x5, ReLU, maxpool 2; flatten 400;
    linear 120, ReLU; linear 84, ReLU; linear 10."""
    s = _Seeds(seed)
    return Sequential(
        Conv2d(in_channels, 6, 5, padding=2, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2),
        Conv2d(6, 16, 5, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2),
        Flatten(),
        Linear(400, 120, dtype=dtype, seed=s()), ReLU(),
        Linear(120, 84, dtype=dtype, seed=s()), ReLU(),
        Linear(84, num_classes, dtype=dtype, seed=s()),
        input_shape=(in_channels, 28, 28))


def lenet5_classic(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, in_channels: int = 1) -> Sequential:
    """LeNet-5 as LeCun et al. 1998 (tanh, average pooling), without the RBF output layer."""
    s = _Seeds(seed)
    return Sequential(
        Conv2d(in_channels, 6, 5, padding=2, init="glorot", dtype=dtype, seed=s()), Tanh(), AvgPool2d(2),
        Conv2d(6, 16, 5, init="glorot", dtype=dtype, seed=s()), Tanh(), AvgPool2d(2),
        Flatten(),
        Linear(400, 120, init="glorot", dtype=dtype, seed=s()), Tanh(),
        Linear(120, 84, init="glorot", dtype=dtype, seed=s()), Tanh(),
        Linear(84, num_classes, init="glorot", dtype=dtype, seed=s()),
        input_shape=(in_channels, 28, 28))


def theano_lenet(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, in_channels: int = 1) -> Sequential:
    """The Theano tutorial's LeNet: 20 and 50 5x5 filters, max-pool then tanh, 500 tanh units.

    Each convolution is max-pooled, then tanh; the classifier is softmax over 10."""
    s = _Seeds(seed)
    return Sequential(
        Conv2d(in_channels, 20, 5, init="glorot", dtype=dtype, seed=s()), MaxPool2d(2), Tanh(),
        Conv2d(20, 50, 5, init="glorot", dtype=dtype, seed=s()), MaxPool2d(2), Tanh(),
        Flatten(),
        Linear(800, 500, init="glorot", dtype=dtype, seed=s()), Tanh(),
        Linear(500, num_classes, init="glorot", dtype=dtype, seed=s()),
        input_shape=(in_channels, 28, 28))


def tutorial_net(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, in_channels: int = 1) -> Sequential:
    """The PyTorch beginners' tutorial net (3x3 kernels) sized for 28x28 inputs."""
    s = _Seeds(seed)
    return Sequential(
        Conv2d(in_channels, 6, 3, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2),
        Conv2d(6, 16, 3, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2),
        Flatten(),
        Linear(400, 120, dtype=dtype, seed=s()), ReLU(),
        Linear(120, 84, dtype=dtype, seed=s()), ReLU(),
        Linear(84, num_classes, dtype=dtype, seed=s()),
        input_shape=(in_channels, 28, 28))


def mlp(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, in_channels: int = 1) -> Sequential:
    """The seeds' fully connected baseline: 784-300-50-10 with ReLU."""
    s = _Seeds(seed)
    return Sequential(
        Flatten(),
        Linear(in_channels * 784, 300, dtype=dtype, seed=s()), ReLU(),
        Linear(300, 50, dtype=dtype, seed=s()), ReLU(),
        Linear(50, num_classes, dtype=dtype, seed=s()),
        input_shape=(in_channels, 28, 28))


def lenet5_separable(seed: int = 0, dtype: Any = np.float32, num_classes: int = 10, in_channels: int = 1) -> Sequential:
    """LeNet-5 with a depthwise-separable second convolution (5x5 depthwise, 1x1 pointwise).

    The depthwise conv has groups=6; the pointwise conv maps 6->16: the Xception/MobileNet
    factorisation of the seeds' section on convolution types."""
    s = _Seeds(seed)
    return Sequential(
        Conv2d(in_channels, 6, 5, padding=2, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2),
        Conv2d(6, 6, 5, groups=6, dtype=dtype, seed=s()),
        Conv2d(6, 16, 1, dtype=dtype, seed=s()), ReLU(), MaxPool2d(2),
        Flatten(),
        Linear(400, 120, dtype=dtype, seed=s()), ReLU(),
        Linear(120, 84, dtype=dtype, seed=s()), ReLU(),
        Linear(84, num_classes, dtype=dtype, seed=s()),
        input_shape=(in_channels, 28, 28))


MODELS: dict[str, Callable[..., Sequential]] = {
    "lenet5": lenet5,
    "lenet5-classic": lenet5_classic,
    "theano-lenet": theano_lenet,
    "tutorial-net": tutorial_net,
    "mlp": mlp,
    "lenet5-separable": lenet5_separable,
}


def names() -> list[str]:
    return list(MODELS)


def describe(name: str) -> str:
    """First line of a model's docstring."""
    return (MODELS[name].__doc__ or "").strip().splitlines()[0]


def get(name: str, **kwargs: Any) -> Sequential:
    """Build a model by name, e.g. `get("lenet5", seed=1)`; the name and arguments go into
    `model.spec` so checkpoints can record how it was built."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
    model = MODELS[name](**kwargs)
    model.spec = {"name": name, "kwargs": {k: (np.dtype(v).name if k == "dtype" else v) for k, v in kwargs.items()}}
    return model
