"""Optimizers: SGD (momentum, Nesterov, weight decay), Adam and AdamW.

An optimizer packs its parameters into flat buffers (layers/flat.py: one per device and dtype),
so each step is one in-place update over each buffer through the device's op table: one kernel
for every parameter at once on the GPU, and per element the same arithmetic as a per-parameter
update. `zero_grad` is one fill per buffer. Buffers (momentum, moments) are flat too, with each
`param.state[name]` a view into them, so checkpoints and `model.to(...)` see per-parameter arrays;
a parameter that leaves its buffer (moved, cast) makes the next step pack again.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .layers import Parameter
from .layers.flat import FlatBuffer, pack, zero_grads

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "OPTIMIZERS", "make"]


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _real(value: Any) -> bool:
    """A finite real number (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)


class Optimizer:
    """Base: holds parameters, a learning rate and a step count."""

    def __init__(self, params: Iterable[Parameter], lr: float):
        self.params = list(params)
        _check(len(self.params) > 0, f"{type(self).__name__}: got no parameters to optimize")
        for p in self.params:
            _check(isinstance(p, Parameter),
                   f"{type(self).__name__}: expected Parameter objects, got {type(p).__name__}")
        _check(_real(lr) and lr > 0,
               f"{type(self).__name__}: lr must be a positive finite number, got {lr!r}")
        self.lr = float(lr)
        self.steps = 0
        self._trainable = self._trainable_key()
        self._buffers: list[FlatBuffer] = pack(self._trainable_params())

    def _trainable_key(self) -> tuple[bool, ...]:
        return tuple(p.requires_grad for p in self.params)

    def _trainable_params(self) -> list[Parameter]:
        """The parameters a step updates: a frozen one (requires_grad False) is left as it is."""
        return [p for p in self.params if p.requires_grad]

    def buffers(self) -> list[FlatBuffer]:
        """The flat buffers of the trainable parameters, packed again if a parameter left its buffer
        or was frozen or unfrozen since the last pack."""
        key = self._trainable_key()
        if key != self._trainable or any(b.broken for b in self._buffers):
            self._buffers = pack(self._trainable_params())
            self._trainable = key
        return self._buffers

    def zero_grad(self) -> None:
        self.buffers()
        zero_grads(self.params)  # each fill on its buffer's device (see flat.zero_grads)

    def step(self) -> None:
        self.steps += 1
        for buf in self.buffers():
            with buf.device.scope():  # on "gpu:N" the update kernels run on N
                self._update(buf)

    def _update(self, buf: FlatBuffer) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr}

    def state_dict(self) -> dict[str, Any]:
        """{"type", "hyper", "steps", "buffers": {param index: {name: array}}} (device arrays)."""
        return {"type": type(self).__name__, "hyper": self.hyperparameters(), "steps": self.steps,
                "buffers": {i: dict(p.state) for i, p in enumerate(self.params) if p.state}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from .backend import to_device

        if state.get("type") != type(self).__name__:
            raise ValueError(f"{type(self).__name__}: cannot load state of a {state.get('type')!r} optimizer")
        for k, v in state.get("hyper", {}).items():
            setattr(self, k, v)
        self.steps = int(state.get("steps", 0))
        for i, p in enumerate(self.params):
            buffers = state.get("buffers", {}).get(i, state.get("buffers", {}).get(str(i), {}))
            for name, arr in buffers.items():
                if tuple(arr.shape) != p.shape:
                    raise ValueError(f"{type(self).__name__}: buffer {name} of parameter {i} has shape "
                                     f"{tuple(arr.shape)}, expected {p.shape}")
                p.state[name] = to_device(arr, p.device).astype(p.data.dtype)


class SGD(Optimizer):
    """SGD with optional (Nesterov) momentum and L2 weight decay, PyTorch's formulation."""

    def __init__(self, params: Iterable[Parameter], lr: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, lr)
        _check(_real(momentum) and 0.0 <= momentum < 1.0,
               f"SGD: momentum must be in [0, 1), got {momentum!r}")
        _check(not nesterov or momentum > 0, "SGD: nesterov=True needs momentum > 0")
        _check(_real(weight_decay) and weight_decay >= 0,
               f"SGD: weight_decay must be a finite number >= 0, got {weight_decay!r}")
        self.momentum, self.nesterov, self.weight_decay = float(momentum), bool(nesterov), float(weight_decay)

    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}

    def _update(self, buf: FlatBuffer) -> None:
        buf.device.ops.sgd_update(buf.data, buf.grad, buf.state("velocity"), self.lr, self.momentum,
                                  self.weight_decay, self.nesterov)


class Adam(Optimizer):
    """Adam (Kingma and Ba) with bias correction and optional L2 weight decay."""

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr)
        _check(isinstance(betas, (tuple, list)) and len(betas) == 2 and all(_real(b) and 0.0 <= b < 1.0 for b in betas),
               f"Adam: betas must be two numbers in [0, 1), got {betas!r}")
        b1, b2 = betas
        _check(_real(eps) and eps > 0, f"Adam: eps must be a finite number > 0, got {eps!r}")
        _check(_real(weight_decay) and weight_decay >= 0,
               f"Adam: weight_decay must be a finite number >= 0, got {weight_decay!r}")
        self.betas, self.eps, self.weight_decay = (float(b1), float(b2)), float(eps), float(weight_decay)

    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay}

    def step(self) -> None:
        b1, b2 = self.betas
        self._bc = (1 - b1 ** (self.steps + 1), 1 - b2 ** (self.steps + 1))
        super().step()

    def _update(self, buf: FlatBuffer) -> None:
        b1, b2 = self.betas
        buf.device.ops.adam_update(buf.data, buf.grad, buf.state("m"), buf.state("v"), self.lr, b1, b2, self.eps,
                                   self.weight_decay, self._bc[0], self._bc[1])


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter; PyTorch's AdamW): each step first
    scales the parameters by (1 - lr * weight_decay), then takes Adam's step without decay."""

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(params, lr, betas, eps, weight_decay)

    def _update(self, buf: FlatBuffer) -> None:
        b1, b2 = self.betas
        buf.device.ops.adamw_update(buf.data, buf.grad, buf.state("m"), buf.state("v"), self.lr, b1, b2, self.eps,
                                    1.0 - self.lr * self.weight_decay, self._bc[0], self._bc[1])




# The optimizers by name, as `dualnet train --optimizer` and RunConfig.optimizer know them: each
# builds from (params, lr, momentum, weight_decay), ignoring what it does not use ("sgd" has no
# momentum, "adam" uses its own betas).
OPTIMIZERS: dict[str, Callable[[Iterable[Parameter], float, float, float], Optimizer]] = {
    "sgd": lambda params, lr, momentum, weight_decay: SGD(params, lr=lr, weight_decay=weight_decay),
    "momentum": lambda params, lr, momentum, weight_decay: SGD(params, lr=lr, momentum=momentum,
                                                               weight_decay=weight_decay),
    "nesterov": lambda params, lr, momentum, weight_decay: SGD(params, lr=lr, momentum=momentum, nesterov=True,
                                                               weight_decay=weight_decay),
    "adam": lambda params, lr, momentum, weight_decay: Adam(params, lr=lr, weight_decay=weight_decay),
    "adamw": lambda params, lr, momentum, weight_decay: AdamW(params, lr=lr, weight_decay=weight_decay),
}


def make(name: str, params: Iterable[Parameter], lr: float, momentum: float = 0.0,
         weight_decay: float = 0.0) -> Optimizer:
    """The optimizer called `name` in OPTIMIZERS ("sgd", "momentum", "nesterov", "adam", "adamw") over `params`.

    Raises ValueError naming the known names for an unknown one, and the optimizer's own ValueError
    for a bad value (e.g. "nesterov" with momentum 0).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, lr, momentum, weight_decay)
