"""Where a training run stands (`TrainState`, saved in checkpoints so a run resumes exactly) and
the exceptions that end a run early: divergence, an interrupt (carrying the state to resume
from), the GPU running out of memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..errors import DualnetError

__all__ = ["TrainState", "TrainingDiverged", "TrainingInterrupted", "DeviceOutOfMemory"]


class DeviceOutOfMemory(DualnetError, MemoryError):
    """The GPU ran out of memory; the message suggests a smaller batch."""

    def __init__(self, batch_size: int, during: str):
        self.batch_size = batch_size
        super().__init__(f"out of GPU memory at batch size {batch_size} ({during}): try --batch-size "
                         f"{max(1, batch_size // 2)}")


class TrainingDiverged(DualnetError, FloatingPointError):
    """A loss or gradient became NaN or infinite; the message names the step and the layer."""


class TrainingInterrupted(DualnetError, KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; `state` resumes the run exactly from the next step."""

    def __init__(self, message: str, state: TrainState, signum: int):
        super().__init__(message)
        self.state = state
        self.signum = signum


@dataclass
class TrainState:
    """Where a run stands: enough to resume it exactly (saved in checkpoints as `rng`)."""

    seed: int = 0
    epoch: int = 0            # epochs completed
    step: int = 0             # steps completed inside the current epoch
    global_step: int = 0
    loss_sum: float = 0.0     # running sums of the current epoch
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    base_lr: float | None = None  # the schedule's starting point (optimizer.lr moves with it)
    history: list = field(default_factory=list)
    # a changed plan (schedules.extend): Segment dicts; empty = the schedule over `epochs` as planned
    schedule_segments: list = field(default_factory=list)
    stop_reason: str | None = None  # set by a callback to end the run after this epoch

    def request_stop(self, reason: str) -> None:
        """Called by a callback: end training after the current epoch, for `reason` (one line)."""
        self.stop_reason = reason

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainState:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)
