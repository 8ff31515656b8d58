"""dualnet.schedules: the planned schedules, segments, and the rules that change a run's length."""

from __future__ import annotations

import pytest

from dualnet.schedules import SCHEDULES, Schedule, Segment, extend, learning_rate

SPE = 10  # steps per epoch


@pytest.mark.parametrize("kind", SCHEDULES)
def test_planned_schedule_equals_learning_rate_bit_for_bit_at_every_step(kind):
    plan = Schedule.planned(kind, 0.02, SPE, 9)
    assert [plan.rate(s) for s in range(95)] == [learning_rate(kind, 0.02, s, 90, SPE, 9) for s in range(95)]
    assert Schedule.of_run(kind, 0.02, SPE, 9, []) == plan
    assert Schedule.of_run(kind, 0.02, SPE, 9, plan.to_list()) == plan


def test_anneal_extension_of_a_finished_cosine_run_starts_at_the_rate_where_it_ended_and_falls_to_zero():
    plan = Schedule.planned("cosine", 0.02, SPE, 1)
    ended = plan.rate(SPE - 1)
    change = extend(plan, "cosine", 0.02, SPE, 15)
    new = change.schedule
    assert new is not None and new.end_step == 15 * SPE
    assert [new.rate(s) for s in range(SPE)] == [plan.rate(s) for s in range(SPE)]  # the past is unchanged
    added = [new.rate(s) for s in range(SPE, 15 * SPE)]
    assert added[0] == ended
    assert all(a >= b for a, b in zip(added, added[1:])) and added[-1] < ended * 1e-3
    assert change.note == (f"extending a finished 1-epoch cosine run to 15 epochs: cosine from {ended:.3g} to 0 "
                           "over epochs 2-15")


def test_constant_extension_keeps_the_ended_rate_and_restart_recomputes_the_plan():
    plan = Schedule.planned("cosine", 0.02, SPE, 2)
    ended = plan.rate(2 * SPE - 1)
    constant = extend(plan, "cosine", 0.02, 2 * SPE, 5, "constant")
    assert constant.schedule is not None
    assert {constant.schedule.rate(s) for s in range(2 * SPE, 5 * SPE)} == {ended}
    assert constant.note.endswith(f"constant {ended:.3g} over epochs 3-5")
    restart = extend(plan, "cosine", 0.02, 2 * SPE, 5, "restart")
    assert restart.schedule is None  # the run's own plan over the new total: the old behaviour
    jumped = Schedule.planned("cosine", 0.02, SPE, 5).rate(2 * SPE)
    assert jumped > 10 * ended and f"the rate is {jumped:.3g} at epoch 3" in restart.note


def test_step_anneal_continues_the_drops_over_the_added_epochs():
    plan = Schedule.planned("step", 0.1, SPE, 3)
    change = extend(plan, "step", 0.1, 3 * SPE, 12)
    assert change.schedule is not None
    per_epoch = [change.schedule.rate(e * SPE) for e in range(12)]
    assert per_epoch[:3] == pytest.approx([0.1, 0.01, 0.001])
    assert per_epoch[3:] == pytest.approx([0.001] * 3 + [1e-4] * 3 + [1e-5] * 3)  # drops at epochs 7 and 10
    assert change.note.endswith("step from 0.001, divided by 10 at epochs 7 and 10, over epochs 4-12")


def test_none_schedule_extends_at_its_constant_rate():
    change = extend(Schedule.planned("none", 0.05, SPE, 2), "none", 0.05, 2 * SPE, 4)
    assert change.schedule is not None and change.schedule.rate(3 * SPE) == 0.05
    assert change.note.endswith("constant 0.05 over epochs 3-4")


def test_an_unfinished_run_lengthened_keeps_its_plan_to_the_old_end_then_anneals():
    plan = Schedule.planned("cosine", 0.02, SPE, 4)
    change = extend(plan, "cosine", 0.02, 15, 6)  # at step 15 of 40
    new = change.schedule
    assert new is not None and [new.rate(s) for s in range(40)] == [plan.rate(s) for s in range(40)]
    assert new.rate(40) == plan.rate(39) and new.segments[-1].start_step == 40
    assert change.note.startswith("extending an unfinished 4-epoch cosine run to 6 epochs: cosine from")


def test_a_shortened_or_early_stopped_run_anneals_from_its_current_step():
    plan = Schedule.planned("cosine", 0.02, SPE, 10)
    short = extend(plan, "cosine", 0.02, 25, 4)
    assert short.schedule is not None and short.schedule.rate(25) == plan.rate(24)
    assert short.schedule.end_step == 40 and short.note.startswith("shortening an unfinished 10-epoch")
    stopped = extend(plan, "cosine", 0.02, 30, 12, stopped=True)
    assert stopped.schedule is not None and stopped.schedule.segments[-1].start_step == 30
    assert stopped.schedule.rate(30) == plan.rate(29)
    assert stopped.note.startswith("extending an early-stopped 10-epoch cosine run to 12 epochs: cosine from")


def test_a_second_extension_drops_segments_the_new_plan_replaces():
    plan = Schedule.planned("cosine", 0.02, SPE, 10)
    first = extend(plan, "cosine", 0.02, 30, 12, stopped=True).schedule
    assert first is not None
    second = extend(first, "cosine", 0.02, 20, 8, "constant").schedule  # resumed from an older checkpoint
    assert second is not None and [s.start_step for s in second.segments] == [0, 20]


def test_extend_refuses_a_plan_that_is_already_done_and_unknown_rules():
    plan = Schedule.planned("cosine", 0.02, SPE, 2)
    with pytest.raises(ValueError, match=r"cannot plan 2 epochs \(20 steps\): 20 steps are already done"):
        extend(plan, "cosine", 0.02, 20, 2)
    with pytest.raises(ValueError, match="extend_schedule 'linear' is not one of anneal, constant, restart"):
        extend(plan, "cosine", 0.02, 20, 4, "linear")


@pytest.mark.parametrize("segment, match", [
    ([], r"is not a dict of kind, start_step, end_step, start_lr"),
    (dict(kind="linear", start_step=0, end_step=5, start_lr=0.1), r"kind 'linear' is not one of none, step, cosine"),
    (dict(kind="cosine", start_step=5, end_step=5, start_lr=0.1), r"steps 5\.\.5 are not ints with 0 <= start < end"),
    (dict(kind="cosine", start_step=0, end_step=5.0, start_lr=0.1), r"steps 0\.\.5\.0 are not ints"),
    (dict(kind="cosine", start_step=0, end_step=5, start_lr=-0.1), r"start_lr=-0\.1 is not a finite number >= 0"),
])
def test_damaged_segments_are_refused_naming_the_value(segment, match):
    with pytest.raises(ValueError, match=match):
        Segment.from_dict(segment)


def test_segments_must_start_at_zero_in_order():
    seg = Segment("cosine", 5, 10, 0.1).to_dict()
    with pytest.raises(ValueError, match=r"must start at step 0 and in increasing order, got \[5\]"):
        Schedule.of_run("cosine", 0.1, SPE, 1, [seg])
