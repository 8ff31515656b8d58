"""What a resumed run carries beyond its parameters and optimizer: a changed plan (schedule
segments), why it stopped early, and its callbacks' states; read back and checked here, so that
dualnet.run stays about starting and continuing runs."""

from __future__ import annotations

from typing import Any

from .schedules import Schedule, extend


def stored_extras_problem(raw: dict, rng: dict, schedule: str) -> str | None:
    """What is wrong with the stored train_state `raw`'s schedule_segments and stop_reason and
    with rng_state `rng`'s callbacks, or None."""
    segments = raw.get("schedule_segments", [])
    try:
        if not isinstance(segments, list):
            raise ValueError(f"{segments!r} is not a list")
        Schedule.of_run(schedule, 1.0, 1, 1, segments)
    except ValueError as exc:
        return f"train_state schedule_segments: {exc}"
    reason = raw.get("stop_reason")
    if reason is not None and not isinstance(reason, str):
        return f"train_state stop_reason={reason!r} is not a string"
    states = rng.get("callbacks", {})
    if not isinstance(states, dict) or not all(isinstance(v, dict) for v in states.values()):
        return f"callbacks={states!r} is not a dict of callback states"
    return None


def replan(state: Any, schedule: str, lr: float, steps_per_epoch: int, planned_epochs: int, epochs: int,
           how: str) -> str:
    """Change `state` (a TrainState of a run planned for `planned_epochs` with `schedule` from `lr`) to
    run `epochs` in all, the rate following rule `how` (dualnet.schedules.extend); clears its early stop.
    Returns the line that says what the rate does now."""
    base_lr = state.base_lr if state.base_lr is not None else lr
    current = Schedule.of_run(schedule, base_lr, steps_per_epoch, planned_epochs, state.schedule_segments)
    change = extend(current, schedule, base_lr, state.global_step, epochs, how, stopped=bool(state.stop_reason))
    state.schedule_segments = [] if change.schedule is None else change.schedule.to_list()
    state.stop_reason = None
    return change.note
