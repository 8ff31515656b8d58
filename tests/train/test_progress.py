"""Progress points: every `every` steps and at an epoch's last, the tally read once and on_batch
called with the epoch's numbers; no host read when nobody listens."""

from __future__ import annotations

import pytest
from parts import FakeTally

from dualnet.train import TrainingDiverged, TrainState
from dualnet.train.progress import Progress


class Listener:
    def __init__(self) -> None:
        self.infos: list[dict] = []

    def on_batch(self, state, info):
        self.infos.append(info)


def _run(progress, tally, state, steps, epoch=0):
    for _ in range(state.step, steps):
        state.step += 1
        state.seen += 4
        progress.after_step(tally, state, epoch, 0.5)


def test_progress_points_fall_every_n_steps_and_on_the_last_with_the_epochs_numbers():
    listener = Listener()
    progress, tally, state = Progress([listener, object()], 3, 7, 3), FakeTally(14.0, 7), TrainState()
    progress.start_epoch(state)
    _run(progress, tally, state, 7, epoch=1)
    assert [i["step"] for i in listener.infos] == [3, 6, 7] and tally.reads == 3
    last = listener.infos[-1]
    assert {k: last[k] for k in ("epoch", "epochs", "steps", "loss", "acc", "lr")} == dict(
        epoch=2, epochs=3, steps=7, loss=14.0 / 28, acc=7 / 28, lr=0.5)
    assert last["images_per_s"] > 0


def test_without_listeners_a_host_tally_is_not_read_but_a_deferred_one_is():
    for deferred, reads in ((False, 0), (True, 2)):
        progress, tally, state = Progress([object()], 1, 4, 2), FakeTally(deferred=deferred), TrainState()
        progress.start_epoch(state)
        _run(progress, tally, state, 4)
        assert tally.reads == reads


def test_a_divergence_the_tally_saw_is_raised_at_the_progress_point():
    progress = Progress([], 1, 4, 2)
    tally, state = FakeTally(deferred=True, divergence=(3, "linear1.weight")), TrainState()
    progress.start_epoch(state)
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 2 \(global step 0\): non-finite values first appear "
                                               r"in the gradient of linear1.weight at global step 3"):
        _run(progress, tally, state, 4)


def test_a_resumed_epochs_clock_goes_on_from_the_stored_seconds():
    progress = Progress([], 1, 4, 2)
    progress.start_epoch(TrainState(seconds=100.0))
    assert 100.0 <= progress.seconds() < 160.0
