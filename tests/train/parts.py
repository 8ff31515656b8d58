"""Small things the tests of fit's parts share: a tiny model and data set, recording doubles."""

from __future__ import annotations

from typing import Any

import numpy as np

import dualnet as dn
from dualnet.train.strategy import SingleProcess


def tiny_data(n: int = 24, seed: int = 0) -> dn.data.Dataset:
    """n images (1, 4, 4) in [0, 1] with labels 0..2."""
    rng = np.random.default_rng(seed)
    return dn.data.Dataset(rng.random((n, 1, 4, 4), dtype=np.float32), rng.integers(0, 3, n), name="tiny")


def tiny_model(seed: int = 0, dtype: Any = np.float32) -> dn.layers.Sequential:
    model = dn.layers.Sequential(dn.layers.Flatten(), dn.layers.Linear(16, 3))
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.data.shape).astype(p.data.dtype)
    return model.astype(dtype) if dtype != np.float32 else model


class RecordingStrategy(SingleProcess):
    """The single-process strategy that records what the parts asked of it."""

    def __init__(self, state: Any = None) -> None:
        super().__init__(state)
        self.calls: list[str] = []
        self.raised_seen: list[Any] = []

    def sync_step(self) -> None:
        self.calls.append("sync_step")

    def decide_stop(self, raised: int | None) -> int | None:
        self.raised_seen.append(raised)
        return raised

    def agree_reason(self, reason: str | None) -> str | None:
        self.calls.append(f"agree_reason {reason}")
        return reason

    def evaluate(self, evaluate: Any, model: Any, dataset: Any) -> dict:
        self.calls.append("evaluate")
        return evaluate(model, dataset)


class FakeTally:
    """A tally with fixed totals; counts how often it was read."""

    def __init__(self, loss_sum: float = 6.0, correct: int = 3, deferred: bool = False,
                 divergence: Any = None) -> None:
        self.loss_sum, self.correct, self.deferred, self.bad = loss_sum, correct, deferred, divergence
        self.reads = 0
        self.added: list[tuple[int, int]] = []

    def add(self, loss: Any, logits: Any, labels: Any, b: int, step: int) -> None:
        self.added.append((b, step))

    def totals(self) -> tuple[float, int]:
        self.reads += 1
        return self.loss_sum, self.correct

    def divergence(self) -> Any:
        return self.bad

    def parameters_finite(self) -> bool:
        return True
