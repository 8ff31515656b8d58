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
from .errors import GradcheckError

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
        raise ValueError(f"gradcheck: mode must be 'train' or 'eval', got {mode!r}")
    dev = getattr(layer, "device", None)
    with dev.scope() if dev is not None else device_scope(x):
        return _gradcheck(layer, x, labels, eps, rtol, full_limit, directions, seed, raise_on_failure,
                          check_input, mode == "train")


def _gradcheck(layer: Any, x: Any, labels: Any, eps: float, rtol: float, full_limit: int, directions: int,
               seed: int, raise_on_failure: bool, check_input: bool, training: bool = True) -> GradcheckReport:
    is_loss = labels is not None
    work = copy.deepcopy(layer)
    if not is_loss:
        work.astype(np.float64)
        work.train(training)
    # where the check computes: the layer's device, else (a loss follows its arrays) the input's;
    # device arrays cross to the host only through explicit moves (a GPU refuses np.asarray)
    dev = getattr(work, "device", None)
    if dev is None:
        where = array_device(x)
        dev = None if where == "host" else get_device_object(where)
    x64 = to_device(to_numpy(x).astype(np.float64), dev) if dev is not None else np.asarray(x, np.float64)
    gen = np.random.default_rng(seed)
    rngs = [layer.rng for layer in getattr(work, "layers", [work])
            if isinstance(getattr(layer, "rng", None), np.random.Generator)]
    rng_states = [r.bit_generator.state for r in rngs]

    def run(inp: Any) -> Any:
        for r, st in zip(rngs, rng_states):  # dropout draws the same mask on every evaluation
            r.bit_generator.state = st
        return work(inp, labels, sync=False) if is_loss else work(inp)

    y = run(x64)
    weights = None if is_loss else to_device(gen.uniform(-1, 1, size=y.shape), dev)

    def loss(inp: Any) -> float:
        out = run(inp)
        return float(out) if is_loss else float((out * weights).sum())

    # rounding noise of one central difference: the terms of L carry machine-epsilon errors
    magnitude = abs(float(y)) if is_loss else float(abs(y * weights).sum())
    noise = 16 * np.finfo(np.float64).eps * (magnitude + 1.0) / eps

    # analytic
    if not is_loss:
        work.zero_grad()
        run(x64)
        dx = work.backward(weights)
        params = [(name, p) for name, p in work.named_parameters() if p.requires_grad]  # frozen: no gradient
    else:
        run(x64)
        dx = work.backward()
        params = []
    tensors: list[tuple[str, Any, Any]] = []
    if check_input:
        tensors.append(("input", x64, dx))
    tensors += [(name, p.data, p.grad) for name, p in params]

    report = GradcheckReport(getattr(layer, "name", type(layer).__name__), rtol)
    for name, arr, grad in tensors:
        g = to_numpy(grad).astype(np.float64)
        host = to_numpy(arr)
        if arr.size <= full_limit:
            num = np.empty(arr.size)
            flat = arr.reshape(-1)
            for i in range(arr.size):
                old = float(host.reshape(-1)[i])
                flat[i] = old + eps
                plus = loss(x64)
                flat[i] = old - eps
                minus = loss(x64)
                flat[i] = old
                num[i] = (plus - minus) / (2 * eps)
            err = _rel_error(g.reshape(-1), num, noise, rtol)
            k = int(np.argmax(err))
            where = f"index {tuple(int(i) for i in np.unravel_index(k, arr.shape))}"
            report.results.append(TensorResult(name, arr.size, "full", float(err[k]), where,
                                               float(g.reshape(-1)[k]), float(num[k])))
        else:
            errs = []
            base = host.copy()
            for d_i in range(directions):
                d = gen.standard_normal(arr.shape)
                d /= np.linalg.norm(d)
                dd = to_device(d, dev) if dev is not None else d
                arr[...] = to_device(base + eps * d, dev) if dev is not None else base + eps * d
                plus = loss(x64)
                arr[...] = to_device(base - eps * d, dev) if dev is not None else base - eps * d
                minus = loss(x64)
                arr[...] = to_device(base, dev) if dev is not None else base
                num = (plus - minus) / (2 * eps)
                ana = float((g * to_numpy(dd)).sum())
                err = float(_rel_error(np.array([ana]), np.array([num]), noise, rtol)[0])
                errs.append((err, d_i, ana, num))
            err, d_i, ana, num = max(errs)
            report.results.append(TensorResult(name, arr.size, "directions", err, f"direction {d_i}", ana, num))
    if raise_on_failure and not report.passed:
        bad = max(report.results, key=lambda r: r.worst_error)
        raise GradcheckError(f"gradcheck {report.layer}: gradient of {bad.name} is wrong at {bad.where}: "
                             f"analytic {bad.analytic:.10g}, numerical {bad.numerical:.10g} "
                             f"(relative error {bad.worst_error:.2e} > {rtol:g})\n{report}")
    return report
