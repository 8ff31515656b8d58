"""Learning-rate schedules, as pure functions of the global step (so a resumed run is exact).

A run's schedule is a list of segments. A run as planned has one: its schedule (none/step/cosine)
from the base rate over all its epochs. Changing the planned length of a run (`dn.resume(path,
epochs=..., extend_schedule=...)`, `dualnet train --resume ... --epochs N`) appends a segment
(`extend`); the segments are stored in the run's state, so the extension resumes exactly too.

Extension rules (`EXTENSIONS`), applied from the step where the new plan departs from the old
one (the old plan's last step when lengthening; the run's current step when it stopped early
or is shortened):

    anneal    (default) the run's own schedule again over the added steps, starting from the
              rate of the last step taken: cosine goes from that rate down to 0; step keeps that
              rate and divides it by 10 after a third and two thirds of the added epochs;
              none stays constant. The rate never jumps up.
    constant  the rate of the last step taken, unchanged to the end.
    restart   the run's schedule recomputed over the new total from the base rate (what
              dualnet did before segments existed: a cosine's rate jumps back up).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from .errors import UsageError

SCHEDULES = ("none", "step", "cosine")
EXTENSIONS = ("anneal", "constant", "restart")


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
        drops = sum(epoch >= m for m in _drop_epochs(epochs))
        return base_lr * 0.1 ** drops
    if schedule == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))
    raise UsageError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")


def _drop_epochs(epochs: int) -> list[int]:
    """The 0-based epochs at which the step schedule divides the rate by 10."""
    return [m for m in (math.ceil(epochs / 3), math.ceil(2 * epochs / 3)) if m > 0]


@dataclass(frozen=True)
class Segment:
    """`kind` (one of SCHEDULES) from `start_lr` over global steps [start_step, end_step)."""

    kind: str
    start_step: int
    end_step: int
    start_lr: float

    def rate(self, step: int, steps_per_epoch: int) -> float:
        span = self.end_step - self.start_step
        return learning_rate(self.kind, self.start_lr, step - self.start_step, span, steps_per_epoch,
                             math.ceil(span / max(1, steps_per_epoch)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> Segment:
        """Raises ValueError naming the bad value (checkpoints are read through this)."""
        if not isinstance(d, dict) or set(d) != {"kind", "start_step", "end_step", "start_lr"}:
            raise UsageError(f"schedule segment {d!r} is not a dict of kind, start_step, end_step, start_lr")
        kind, start, end, lr = d["kind"], d["start_step"], d["end_step"], d["start_lr"]
        if kind not in SCHEDULES:
            raise UsageError(f"schedule segment kind {kind!r} is not one of {', '.join(SCHEDULES)}")
        if type(start) is not int or type(end) is not int or not 0 <= start < end:
            raise UsageError(f"schedule segment steps {start!r}..{end!r} are not ints with 0 <= start < end")
        if type(lr) not in (int, float) or not math.isfinite(lr) or lr < 0:
            raise UsageError(f"schedule segment start_lr={lr!r} is not a finite number >= 0")
        return cls(kind, start, end, float(lr))


@dataclass(frozen=True)
class Schedule:
    """A run's learning rate as a pure function of the global step: the last segment that has
    started decides. `steps_per_epoch` converts the step schedule's epochs into steps."""

    segments: tuple[Segment, ...]
    steps_per_epoch: int

    @classmethod
    def planned(cls, kind: str, base_lr: float, steps_per_epoch: int, epochs: int) -> Schedule:
        """The schedule of a run as planned: `kind` from base_lr over all `epochs`."""
        if kind not in SCHEDULES:
            raise UsageError(f"unknown schedule {kind!r}; choose one of {', '.join(SCHEDULES)}")
        return cls((Segment(kind, 0, max(1, steps_per_epoch * epochs), base_lr),), steps_per_epoch)

    @classmethod
    def of_run(cls, kind: str, base_lr: float, steps_per_epoch: int, epochs: int,
               segments: Iterable[Any] = ()) -> Schedule:
        """The stored `segments` (dicts, as in TrainState.schedule_segments) if any, else the plan."""
        stored = tuple(s if isinstance(s, Segment) else Segment.from_dict(s) for s in segments)
        if not stored:
            return cls.planned(kind, base_lr, steps_per_epoch, epochs)
        if stored[0].start_step != 0 or any(a.start_step >= b.start_step for a, b in zip(stored, stored[1:])):
            raise UsageError(f"schedule segments must start at step 0 and in increasing order, got "
                             f"{[s.start_step for s in stored]}")
        return cls(stored, steps_per_epoch)

    @property
    def end_step(self) -> int:
        return self.segments[-1].end_step

    def rate(self, step: int) -> float:
        """The learning rate at global step `step` (0-based)."""
        for seg in reversed(self.segments):
            if step >= seg.start_step:
                return seg.rate(step, self.steps_per_epoch)
        return self.segments[0].rate(step, self.steps_per_epoch)

    def to_list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.segments]


@dataclass(frozen=True)
class Extension:
    """A changed plan: the schedule to store (None: the plan recomputed, for `restart`) and the
    one line that says what it does."""

    schedule: Schedule | None
    note: str


def extend(current: Schedule, kind: str, base_lr: float, done_steps: int, epochs: int, how: str = "anneal",
           stopped: bool = False) -> Extension:
    """Change a run's plan to `epochs` in all. `current`: its schedule; `kind`: its schedule's name;
    `done_steps`: global steps taken; `stopped`: it stopped early (it ended at `done_steps`).

    The new segment starts where the old plan ends when lengthening an unstopped run, else at
    `done_steps`; it starts from the rate of the step before it (see the module's rules).
    """
    if how not in EXTENSIONS:
        raise UsageError(f"extend_schedule {how!r} is not one of {', '.join(EXTENSIONS)}")
    spe = current.steps_per_epoch
    new_end = spe * epochs
    if new_end <= done_steps:
        raise UsageError(f"cannot plan {epochs} epochs ({new_end} steps): {done_steps} steps are already done")
    start = done_steps if stopped or new_end < current.end_step else current.end_step
    first = start // spe + 1  # the first epoch the new rule touches
    what = "an early-stopped" if stopped else "a finished" if done_steps >= current.end_step else "an unfinished"
    head = (f"{'extending' if new_end > current.end_step else 'shortening'} {what} "
            f"{math.ceil(current.end_step / spe)}-epoch {kind} run to {epochs} epochs")
    span = _epoch_span(first, epochs)
    if how == "restart":
        restarted = Schedule.planned(kind, base_lr, spe, epochs)
        return Extension(None, f"{head}: {kind} restarted from the base rate {base_lr:.3g} over all {epochs} epochs "
                               f"(the rate is {restarted.rate(start):.3g} at epoch {first})")
    lr = current.rate(start - 1) if start > 0 else base_lr
    seg_kind = "none" if how == "constant" else kind
    segment = Segment(seg_kind, start, new_end, lr)
    kept = tuple(s for s in current.segments if s.start_step < start)
    if seg_kind == "cosine":
        rule = f"cosine from {lr:.3g} to 0 over {span}"
    elif seg_kind == "step":
        drops = [first + m for m in _drop_epochs(math.ceil((new_end - start) / spe))]
        rule = (f"step from {lr:.3g}, divided by 10 at epoch{'s' if len(drops) > 1 else ''} "
                f"{' and '.join(map(str, drops))}, over {span}") if drops else f"constant {lr:.3g} over {span}"
    else:
        rule = f"constant {lr:.3g} over {span}"
    return Extension(Schedule((*kept, segment), spe), f"{head}: {rule}")


def _epoch_span(first: int, last: int) -> str:
    return f"epoch {first}" if first == last else f"epochs {first}-{last}"

