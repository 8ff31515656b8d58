"""Weight initialisers: the fan-in/fan-out uniform schemes of the seeds.

All draw on the host from a seeded NumPy generator, so a model starts from the same weights on
every device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import UsageError

__all__ = ["rng", "initialize", "he_uniform", "glorot_uniform", "lecun_uniform", "INITIALIZERS"]

_default_rng = np.random.default_rng(0)


def rng(seed: int | None) -> np.random.Generator:
    """A generator for `seed`, or the module's shared one (seed it with `dn.init.seed(s)`)."""
    return _default_rng if seed is None else np.random.default_rng(seed)


def seed(s: int) -> None:
    """Reseed the shared generator used by layers built without an explicit seed."""
    global _default_rng
    _default_rng = np.random.default_rng(s)


def he_uniform(shape, fan_in: int, fan_out: int, gen: np.random.Generator) -> np.ndarray:
    """U(-sqrt(6 / fan_in), +): keeps ReLU activations' variance (He et al. 2015)."""
    bound = np.sqrt(6.0 / fan_in)
    return gen.uniform(-bound, bound, size=shape)


def glorot_uniform(shape, fan_in: int, fan_out: int, gen: np.random.Generator) -> np.ndarray:
    """U(-sqrt(6 / (fan_in + fan_out)), +): the Theano tutorial's tanh initialiser."""
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return gen.uniform(-bound, bound, size=shape)


def lecun_uniform(shape, fan_in: int, fan_out: int, gen: np.random.Generator) -> np.ndarray:
    """U(-sqrt(1 / fan_in), +): PyTorch's default for conv and linear weights."""
    bound = np.sqrt(1.0 / fan_in)
    return gen.uniform(-bound, bound, size=shape)


INITIALIZERS = {"he": he_uniform, "glorot": glorot_uniform, "lecun": lecun_uniform}


def initialize(name: str, shape, fan_in: int, fan_out: int, gen: np.random.Generator, dtype: Any) -> np.ndarray:
    if name not in INITIALIZERS:
        raise UsageError(f"unknown initialiser {name!r}; choose one of {', '.join(INITIALIZERS)}")
    return INITIALIZERS[name](shape, fan_in, fan_out, gen).astype(dtype)
