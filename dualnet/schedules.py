"""Learning-rate schedules, as pure functions of the global step (so a resumed run is exact)."""

from __future__ import annotations

import math

SCHEDULES = ("none", "step", "cosine")


def learning_rate(schedule: str, base_lr: float, step: int, total_steps: int, steps_per_epoch: int,
                  epochs: int) -> float:
    """The learning rate at global step `step` (0-based) of `total_steps`.

    none:   constant.
    step:   divided by 10 after a third and again after two thirds of the epochs.
    cosine: half a cosine from base_lr down to 0 over the whole run, per step.
    """
    if schedule == "none":
        return base_lr
    if schedule == "step":
        epoch = step // max(1, steps_per_epoch)
        drops = sum(epoch >= m for m in (math.ceil(epochs / 3), math.ceil(2 * epochs / 3)) if m > 0)
        return base_lr * 0.1 ** drops
    if schedule == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))
    raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
