"""How many processes share a run, as fit's parts see it: the training strategy.

A strategy answers the questions on which one process and a data-parallel job differ, so that
the batch source, the step and the epoch end ask them without branching: which rows of the
epoch's order this process reads, this process's share of a global batch and its weight in the
batch's mean loss, gradient synchronisation after the backward pass, the step tally, whether a
stop (a signal, a callback's request) holds for everyone, and validation. `SingleProcess` is the
trivial strategy; `dualnet.distributed.DataParallel` is the data-parallel one (same methods).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np


class Strategy(Protocol):
    """What fit's parts ask of the processes sharing a run (see the module docstring)."""

    rank: int
    size: int
    state: Any  # the run state every process starts from (a TrainState)

    def order_share(self, order: np.ndarray) -> np.ndarray:
        """This process's rows of the epoch's order (N,): the rows its batches come from."""

    def rows(self, start: int, stop: int) -> tuple[int, int]:
        """This process's rows [lo, hi) of its order share for the global batch order[start:stop]."""

    def host_share(self, batch: np.ndarray) -> np.ndarray:
        """This process's images of a global batch prepared on the host: (B, C, H, W) -> (b, C, H, W)."""

    def sync_step(self) -> None:
        """After a step's backward pass: make the gradients (and layer buffers) the global batch's."""

    def tally(self, make: Callable[[float, int], Any], state: Any) -> Any:
        """The epoch's step tally; `make(loss_sum, correct)` builds this process's own."""

    def decide_stop(self, raised: int | None) -> int | None:
        """The signal that stops the run (`raised`: the one this process received), or None."""

    def agree_reason(self, reason: str | None) -> str | None:
        """A callback's stop request, agreed by every process."""

    def evaluate(self, evaluate: Callable[..., dict], model: Any, dataset: Any) -> dict:
        """`evaluate(model, dataset)` of the whole dataset."""


class SingleProcess:
    """One process trains on every row of every batch: each answer is the trivial one."""

    rank, size = 0, 1

    def __init__(self, state: Any) -> None:
        self.state = state

    def order_share(self, order: np.ndarray) -> np.ndarray:
        return order

    def rows(self, start: int, stop: int) -> tuple[int, int]:
        return start, stop

    def host_share(self, batch: np.ndarray) -> np.ndarray:
        return batch

    def sync_step(self) -> None:
        return None

    def tally(self, make: Callable[[float, int], Any], state: Any) -> Any:
        return make(state.loss_sum, state.correct)

    def decide_stop(self, raised: int | None) -> int | None:
        return raised

    def agree_reason(self, reason: str | None) -> str | None:
        return reason

    def evaluate(self, evaluate: Callable[..., dict], model: Any, dataset: Any) -> dict:
        return evaluate(model, dataset)


def make_strategy(comm: Any, model: Any, optimizer: Any, state: Any, batch_size: int, n: int) -> Strategy:
    """SingleProcess without a communicator, else DataParallel over `comm` (which checks that the
    ranks agree and broadcasts rank 0's parameters and `state`: read the run state from `.state`)."""
    if comm is None:
        return SingleProcess(state)
    from ..distributed.parallel import DataParallel
    return DataParallel(comm, model, optimizer, state, batch_size, n)
