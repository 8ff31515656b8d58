"""Numerical gradient checking, public: `dn.gradcheck(layer, x)`.

The scalar checked is L = sum(layer(x) * R) for a fixed random R, so dL/dy = R and backward(R)
must return dL/dx and accumulate dL/dparam. Numerical estimates use float64 central differences:
every element for small tensors, random directions (directional derivatives, as Chainer's
check_backward does) for large ones.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import array_device, device_scope, get_device_object, to_device, to_numpy
from .errors import GradcheckError, UsageError
from .layers.walk import random_generators

__all__ = ["gradcheck", "GradcheckReport"]


@dataclass
class TensorResult:
    name: str
    size: int
    method: str  # "full" or "directions"
    worst_error: float
    where: str
    analytic: float
    numerical: float


@dataclass
class GradcheckReport:
    """Worst relative error per tensor; `passed` compares each with `rtol`."""

    layer: str
    rtol: float
    results: list[TensorResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.worst_error <= self.rtol for r in self.results)

    @property
    def worst(self) -> dict[str, float]:
        return {r.name: r.worst_error for r in self.results}

    def __str__(self) -> str:
        lines = [f"gradcheck {self.layer}: {'passed' if self.passed else 'FAILED'} (rtol {self.rtol:g})"]
        for r in self.results:
            lines.append(f"  {r.name:<12} {r.size:>7} elems  {r.method:<10} worst rel err {r.worst_error:.2e}"
                         f"  at {r.where}")
        return "\n".join(lines)


def _rel_error(a: np.ndarray, n: np.ndarray, noise: float, rtol: float) -> np.ndarray:
    """|a - n| relative to the larger of the two, with a floor.

    A central difference cannot resolve a derivative below its rounding noise
    (~ machine epsilon * |L| / eps), and an element whose true gradient is ~0 can only be
    checked to absolute precision: the floor is the larger of noise / rtol and a thousandth of
    the tensor's gradient scale.
    """
    floor = max(1e-3 * float(np.max(np.abs(n), initial=0.0)), noise / rtol, 1e-300)
    return np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), floor)


def gradcheck(layer: Any, x: Any, *, labels: Any = None, eps: float = 1e-6, rtol: float = 1e-6,
              full_limit: int = 256, directions: int = 4, seed: int = 0, raise_on_failure: bool = True,
              check_input: bool = True, mode: str = "train") -> GradcheckReport:
    """Check `layer.backward` against central differences in float64.

    layer: any dualnet layer (or SoftmaxCrossEntropy, with `labels`); it is copied and cast to
    float64, the original is left untouched. x: its input, any float dtype, on the layer's device.
    Tensors of at most `full_limit` elements are checked element by element, larger ones along
    `directions` random unit directions. Raises GradcheckError naming the tensor, the worst
    element and both values when an error exceeds `rtol` (unless raise_on_failure=False).
    On "gpu:N" the whole check runs on device N. mode "eval" checks the eval-mode function (batch
    norm with its running statistics, dropout as the identity); frozen parameters are not checked.
    """
    if mode not in ("train", "eval"):
        raise UsageError(f"gradcheck: mode must be 'train' or 'eval', got {mode!r}")
    dev = getattr(layer, "device", None)
    with dev.scope() if dev is not None else device_scope(x):
        return _gradcheck(layer, x, labels, eps, rtol, full_limit, directions, seed, raise_on_failure,
                          check_input, mode == "train")


@dataclass
class _Setup:
    """What every phase of one check shares: the float64 working copy, where it computes, its input,
    the loss weights R and the rounding noise of one central difference."""

    work: Any
    labels: Any
    dev: Any  # a Device, or None for a loss on host arrays
    x64: Any
    frozen: list[tuple[np.random.Generator, dict]]  # every RNG of the copy and the state it restarts from
    weights: Any = None
    noise: float = 0.0

    @property
    def is_loss(self) -> bool:
        return self.labels is not None

    def put(self, host: np.ndarray) -> Any:
        """A host array on the check's device (device arrays cross only through explicit moves)."""
        return to_device(host, self.dev) if self.dev is not None else host

    def run(self, inp: Any) -> Any:
        # every stochastic layer, at any depth, draws the same randomness (Dropout's mask) each time
        for gen, state in self.frozen:
            gen.bit_generator.state = state
        return self.work(inp, self.labels, sync=False) if self.is_loss else self.work(inp)

    def loss(self, inp: Any) -> float:
        out = self.run(inp)
        return float(out) if self.is_loss else float((out * self.weights).sum())


def _prepare(layer: Any, x: Any, labels: Any, eps: float, gen: np.random.Generator, training: bool) -> _Setup:
    """Phase 1: a float64 copy of the layer in training mode on its device, its RNGs frozen, the
    input in float64, the random loss weights R and the noise floor of a central difference."""
    work = copy.deepcopy(layer)
    if labels is None:
        work.astype(np.float64)
        work.train(training)
    # where the check computes: the layer's device, else (a loss follows its arrays) the input's
    dev = getattr(work, "device", None)
    if dev is None:
        where = array_device(x)
        dev = None if where == "host" else get_device_object(where)
    x64 = to_device(to_numpy(x).astype(np.float64), dev) if dev is not None else np.asarray(x, np.float64)
    frozen = ([(g, g.bit_generator.state) for _, g in random_generators(work)]
              if hasattr(work, "children") else [])
    setup = _Setup(work, labels, dev, x64, frozen)
    y = setup.run(x64)
    if not setup.is_loss:
        setup.weights = setup.put(gen.uniform(-1, 1, size=y.shape))
    # the terms of L carry machine-epsilon errors, which a central difference divides by eps
    magnitude = abs(float(y)) if setup.is_loss else float(abs(y * setup.weights).sum())
    setup.noise = 16 * np.finfo(np.float64).eps * (magnitude + 1.0) / eps
    return setup


def _analytic(setup: _Setup, check_input: bool) -> list[tuple[str, Any, Any]]:
    """Phase 2: one forward and backward; (name, array, analytic gradient) of each tensor checked."""
    work = setup.work
    if setup.is_loss:
        setup.run(setup.x64)
        dx, params = work.backward(), []
    else:
        work.zero_grad()
        setup.run(setup.x64)
        dx = work.backward(setup.weights)
        params = [(name, p) for name, p in work.named_parameters() if p.requires_grad]  # frozen: no gradient
    tensors: list[tuple[str, Any, Any]] = [("input", setup.x64, dx)] if check_input else []
    return tensors + [(name, p.data, p.grad) for name, p in params]


def _numerical_full(setup: _Setup, name: str, arr: Any, g: np.ndarray, eps: float, rtol: float) -> TensorResult:
    """Phase 3a: every element of a small tensor by a central difference."""
    host = to_numpy(arr).reshape(-1)
    num = np.empty(arr.size)
    flat = arr.reshape(-1)
    for i in range(arr.size):
        old = float(host[i])
        flat[i] = old + eps
        plus = setup.loss(setup.x64)
        flat[i] = old - eps
        minus = setup.loss(setup.x64)
        flat[i] = old
        num[i] = (plus - minus) / (2 * eps)
    err = _rel_error(g.reshape(-1), num, setup.noise, rtol)
    k = int(np.argmax(err))
    where = f"index {tuple(int(i) for i in np.unravel_index(k, arr.shape))}"
    return TensorResult(name, arr.size, "full", float(err[k]), where, float(g.reshape(-1)[k]), float(num[k]))


def _numerical_directions(setup: _Setup, name: str, arr: Any, g: np.ndarray, eps: float, rtol: float,
                          directions: int, gen: np.random.Generator) -> TensorResult:
    """Phase 3b: a large tensor along random unit directions (directional derivatives)."""
    errs = []
    base = to_numpy(arr).copy()
    for d_i in range(directions):
        d = gen.standard_normal(arr.shape)
        d /= np.linalg.norm(d)
        arr[...] = setup.put(base + eps * d)
        plus = setup.loss(setup.x64)
        arr[...] = setup.put(base - eps * d)
        minus = setup.loss(setup.x64)
        arr[...] = setup.put(base)
        num = (plus - minus) / (2 * eps)
        ana = float((g * d).sum())
        err = float(_rel_error(np.array([ana]), np.array([num]), setup.noise, rtol)[0])
        errs.append((err, d_i, ana, num))
    err, d_i, ana, num = max(errs)
    return TensorResult(name, arr.size, "directions", err, f"direction {d_i}", ana, num)


def _gradcheck(layer: Any, x: Any, labels: Any, eps: float, rtol: float, full_limit: int, directions: int,
               seed: int, raise_on_failure: bool, check_input: bool, training: bool = True) -> GradcheckReport:
    gen = np.random.default_rng(seed)
    setup = _prepare(layer, x, labels, eps, gen, training)
    report = GradcheckReport(getattr(layer, "name", type(layer).__name__), rtol)
    for name, arr, grad in _analytic(setup, check_input):
        g = to_numpy(grad).astype(np.float64)
        report.results.append(_numerical_full(setup, name, arr, g, eps, rtol) if arr.size <= full_limit else
                              _numerical_directions(setup, name, arr, g, eps, rtol, directions, gen))
    # phase 4: the verdict
    if raise_on_failure and not report.passed:
        bad = max(report.results, key=lambda r: r.worst_error)
        raise GradcheckError(f"gradcheck {report.layer}: gradient of {bad.name} is wrong at {bad.where}: "
                             f"analytic {bad.analytic:.10g}, numerical {bad.numerical:.10g} "
                             f"(relative error {bad.worst_error:.2e} > {rtol:g})\n{report}")
    return report
