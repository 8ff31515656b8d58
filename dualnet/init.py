"""Weight initialisers: the fan-in/fan-out uniform schemes of the seeds.

All draw on the host from a seeded NumPy generator, so a model starts from the same weights on
every device. `initialize` fills an array of the target dtype block by block (`DRAW_BLOCK`
values at a time): memory peaks at the weight itself, never at a float64 copy of it, and a
float32 weight holds the bits a float64 draw cast to float32 would (the generator's stream does
not depend on how it is cut), so runs are unchanged.

A size budget (`parameter_budget`) refuses, before anything is drawn, a model whose weights
would pass a cap: commands that build a model from shapes a user gives use it (dualnet.sizes).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["rng", "initialize", "he_uniform", "glorot_uniform", "lecun_uniform", "INITIALIZERS", "parameter_budget",
           "DRAW_BLOCK"]

_default_rng = np.random.default_rng(0)
#: values drawn (as float64) per block when filling a weight of another dtype
DRAW_BLOCK = 1 << 16
# [bytes charged so far, the cap, what to raise when passed]; None outside parameter_budget
_budget: contextvars.ContextVar[list | None] = contextvars.ContextVar("dualnet_parameter_budget", default=None)


def rng(seed: int | None) -> np.random.Generator:
    """A generator for `seed`, or the module's shared one (seed it with `dn.init.seed(s)`)."""
    return _default_rng if seed is None else np.random.default_rng(seed)


def seed(s: int) -> None:
    """Reseed the shared generator used by layers built without an explicit seed."""
    global _default_rng
    _default_rng = np.random.default_rng(s)


def _uniform(bound: float, shape, gen: np.random.Generator, dtype: Any) -> np.ndarray:
    """U(-bound, bound) of `shape` in `dtype`, drawn in float64 blocks written straight into the result."""
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        return gen.uniform(-bound, bound, size=shape)
    out = np.empty(shape, dtype)
    flat = out.reshape(-1)
    for start in range(0, flat.size, DRAW_BLOCK):
        stop = min(start + DRAW_BLOCK, flat.size)
        flat[start:stop] = gen.uniform(-bound, bound, size=stop - start)
    return out


def he_uniform(shape, fan_in: int, fan_out: int, gen: np.random.Generator, dtype: Any = np.float64) -> np.ndarray:
    """U(-sqrt(6 / fan_in), +): keeps ReLU activations' variance (He et al. 2015)."""
    return _uniform(np.sqrt(6.0 / fan_in), shape, gen, dtype)


def glorot_uniform(shape, fan_in: int, fan_out: int, gen: np.random.Generator, dtype: Any = np.float64) -> np.ndarray:
    """U(-sqrt(6 / (fan_in + fan_out)), +): the Theano tutorial's tanh initialiser."""
    return _uniform(np.sqrt(6.0 / (fan_in + fan_out)), shape, gen, dtype)


def lecun_uniform(shape, fan_in: int, fan_out: int, gen: np.random.Generator, dtype: Any = np.float64) -> np.ndarray:
    """U(-sqrt(1 / fan_in), +): PyTorch's default for conv and linear weights."""
    return _uniform(np.sqrt(1.0 / fan_in), shape, gen, dtype)


INITIALIZERS = {"he": he_uniform, "glorot": glorot_uniform, "lecun": lecun_uniform}


@contextlib.contextmanager
def parameter_budget(max_bytes: int, refuse: Callable[[int, tuple[int, ...]], Exception]) -> Iterator[None]:
    """Within the block, `initialize` counts the bytes of every weight it is asked for (data and
    gradient) and raises refuse(total bytes, the weight's shape) before drawing the one that takes
    the total past `max_bytes`."""
    token = _budget.set([0, max_bytes, refuse])
    try:
        yield
    finally:
        _budget.reset(token)


def initialize(name: str, shape, fan_in: int, fan_out: int, gen: np.random.Generator, dtype: Any) -> np.ndarray:
    """A weight of `shape` in `dtype` drawn by initialiser `name` (see INITIALIZERS)."""
    if name not in INITIALIZERS:
        raise ValueError(f"unknown initialiser {name!r}; choose one of {', '.join(INITIALIZERS)}")
    budget = _budget.get()
    if budget is not None:  # from the shape alone, before anything is allocated
        budget[0] += 2 * math.prod(shape) * np.dtype(dtype).itemsize  # the weight and its gradient
        if budget[0] > budget[1]:
            raise budget[2](budget[0], tuple(shape))
    return INITIALIZERS[name](shape, fan_in, fan_out, gen, dtype)
