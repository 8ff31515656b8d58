"""dualnet.run: the stored run read back, and dn.resume continuing a run bit for bit."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

import dualnet as dn
from dualnet import optim, run
from dualnet.callbacks import EarlyStopping
from dualnet.errors import CheckpointError
from dualnet.run import RunConfig
from dualnet.schedules import learning_rate
from dualnet.train import TrainingInterrupted, TrainState

MNIST = (1, 28, 28)


def assert_same_run(a: dn.Sequential, b: dn.Sequential) -> None:
    """Parameters and optimizer buffers equal bit for bit."""
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert np.array_equal(dn.to_numpy(p.data), dn.to_numpy(q.data)), name
        assert p.state.keys() == q.state.keys(), name
        for key in p.state:
            assert np.array_equal(dn.to_numpy(p.state[key]), dn.to_numpy(q.state[key])), (name, key)


def assert_same_parameter_bytes(a: dn.Sequential, b: dn.Sequential) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert dn.to_numpy(p.data).tobytes() == dn.to_numpy(q.data).tobytes(), name


def curves(history: list[dict]) -> list[tuple]:
    """What a history says about learning (its timings differ run to run)."""
    return [(h["epoch"], h["train_loss"], h["train_acc"], h["lr"], h["val_loss"], h["val_acc"]) for h in history]


# --- the optimizer table -----------------------------------------------------------------------


def test_optimizers_by_name():
    params = list(dn.models.lenet5().parameters())
    sgd = optim.make("sgd", params, lr=0.1, momentum=0.9, weight_decay=1e-4)
    assert type(sgd) is optim.SGD and (sgd.momentum, sgd.nesterov, sgd.weight_decay) == (0.0, False, 1e-4)
    heavy = optim.make("momentum", params, lr=0.1, momentum=0.9)
    assert (heavy.momentum, heavy.nesterov) == (0.9, False)
    assert optim.make("nesterov", params, lr=0.1, momentum=0.9).nesterov
    adam = optim.make("adam", params, lr=1e-3, momentum=0.9, weight_decay=0.5)
    assert type(adam) is optim.Adam and adam.weight_decay == 0.5
    adamw = optim.make("adamw", params, lr=1e-3, weight_decay=0.05)
    assert type(adamw) is optim.AdamW and adamw.weight_decay == 0.05
    assert list(optim.OPTIMIZERS) == ["sgd", "momentum", "nesterov", "adam", "adamw"]
    with pytest.raises(ValueError,
                       match="unknown optimizer 'rmsprop'; choose one of sgd, momentum, nesterov, adam, adamw"):
        optim.make("rmsprop", params, lr=0.1)
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        optim.make("nesterov", params, lr=0.1, momentum=0.0)


# --- running and resuming ------------------------------------------------------------------------


def test_resume_continues_a_finished_run_bit_for_bit(tmp_path):
    # a constant learning rate: a cosine schedule's shape depends on the planned epoch count
    config = RunConfig(epochs=2, limit=512, schedule="none")
    straight = dn.train_run(config, out=tmp_path / "straight.h5", device="cpu")
    first = dn.train_run(config.replace(epochs=1), out=tmp_path / "part.h5", device="cpu")
    assert len(first.history) == 1 and first.last == tmp_path / "part.h5" and first.best.exists()
    resumed = dn.resume(tmp_path / "part.h5", epochs=2, device="cpu")
    assert resumed.last == tmp_path / "part.h5"
    assert_same_run(straight.model, resumed.model)
    assert curves(straight.history) == curves(resumed.history)
    assert straight.test_accuracy == resumed.test_accuracy and straight.best_acc == resumed.best_acc
    assert_same_run(dn.load(tmp_path / "straight.h5"), dn.load(tmp_path / "part.h5"))
    stored = run.read_run(tmp_path / "part.h5")
    assert stored.config == config.resolved((1, 28, 28)).replace(num_classes=10) and stored.state.epoch == 2


class InterruptAt:
    """A callback that sends this process SIGINT at the progress report of (epoch, step)."""

    def __init__(self, epoch: int, step: int):
        self.at = (epoch, step)

    def on_batch(self, state, info) -> None:
        if (info["epoch"], info["step"]) == self.at:
            signal.raise_signal(signal.SIGINT)


def test_resume_after_an_interrupt_mid_epoch_equals_the_uninterrupted_run(tmp_path):
    # the default cosine schedule over the planned 2 epochs; 40 steps per epoch, reports every 20
    config = RunConfig(epochs=2, limit=1280, batch_size=32)
    straight = dn.train_run(config, out=tmp_path / "straight.h5", device="cpu")
    with pytest.raises(TrainingInterrupted, match="SIGINT received at epoch 2, step 20"):
        dn.train_run(config, out=tmp_path / "cut.h5", device="cpu", callbacks=[InterruptAt(2, 20)],
                     handle_signals=True)
    stored = run.read_run(tmp_path / "cut.h5")
    assert (stored.state.epoch, stored.state.step) == (1, 20)
    resumed = dn.resume(tmp_path / "cut.h5", device="cpu")  # to the stored 2 epochs
    assert_same_run(straight.model, resumed.model)
    assert curves(straight.history) == curves(resumed.history)


def test_resume_refuses_what_cannot_be_continued(tmp_path):
    config = RunConfig(epochs=1, limit=256)
    dn.train_run(config, out=tmp_path / "done.h5", device="cpu")
    with pytest.raises(ValueError, match=r"done\.h5 has already trained 1 epochs; pass `epochs` larger than 1"):
        dn.resume(tmp_path / "done.h5")
    model = dn.models.lenet5()
    dn.save(model, tmp_path / "plain.h5")
    with pytest.raises(CheckpointError, match=r"plain\.h5 was not written by `dualnet train`; it cannot be resumed"):
        dn.resume(tmp_path / "plain.h5", epochs=2)
    state = {"train_state": {"epoch": 1}, "best_acc": 0.5}
    dn.save(model, tmp_path / "no-opt.h5", rng_state=state, train_config=config.resolved(MNIST).to_dict())
    with pytest.raises(CheckpointError, match=r"no-opt\.h5 holds no optimizer state; it cannot be resumed"):
        dn.resume(tmp_path / "no-opt.h5", epochs=2)


@pytest.mark.parametrize("change, match", [
    (dict(config=dict(lr=-1.0)), r"train_config lr=-1\.0: RunConfig\.lr must be a finite number > 0, got -1\.0"),
    (dict(config=dict(limit=None, model=None)),
     r"train_config model=None: a stored run holds the value its recipe chose"),
    (dict(drop="data"), r"train_config has no 'data'"),
    (dict(state=dict(seen=-3)), r"train_state seen=-3 is not an int >= 0"),
    (dict(state=dict(seconds=math.nan)), r"train_state seconds=nan is not a finite number >= 0"),
    (dict(state=dict(base_lr=0)), r"train_state base_lr=0 is not a finite number > 0"),
    (dict(state=dict(history={})), r"train_state history is not a list of epoch records"),
    (dict(best="high"), r"best_acc='high' is not a finite number"),
])
def test_damaged_stored_run_is_refused_naming_the_value(tmp_path, change, match):
    model = dn.models.lenet5()
    opt = optim.make("sgd", model.parameters(), lr=0.1)
    stored = RunConfig(epochs=2, limit=256).resolved(MNIST).to_dict() | change.get("config", {})
    stored.pop(change.get("drop", ""), None)
    state = {"train_state": {"epoch": 1, **change.get("state", {})}, "best_acc": change.get("best", 0.5)}
    path = dn.save(model, tmp_path / "damaged.h5", optimizer=opt, rng_state=state, train_config=stored)
    with pytest.raises(CheckpointError, match=r"damaged\.h5: cannot resume: the stored run is damaged: " + match):
        run.read_run(path)


def test_checkpoints_of_older_versions_without_validation_resume_with_its_old_value(tmp_path):
    model = dn.models.lenet5()
    opt = optim.make("sgd", model.parameters(), lr=0.1)
    stored = RunConfig(epochs=2, limit=256, validation=5).resolved(MNIST).to_dict()
    del stored["validation"]
    path = dn.save(model, tmp_path / "old.h5", optimizer=opt, rng_state={"train_state": {"epoch": 1}},
                   train_config=stored)
    assert run.read_run(path).config.validation == 10000


def test_checkpoint_writer_keeps_last_and_best(tmp_path):
    writer = run.CheckpointWriter(tmp_path / "w.h5", RunConfig(limit=256), best_acc=0.5)
    assert writer.best == run.best_path(tmp_path / "w.h5") == tmp_path / "w.best.h5"
    model = dn.models.lenet5()
    opt = optim.make("sgd", model.parameters(), lr=0.1)
    state = TrainState(epoch=1, history=[{"epoch": 1, "train_acc": 0.4}])
    writer.on_epoch(state, {"train_acc": 0.4}, model, opt)  # no validation: training accuracy decides
    assert writer.out.exists() and not writer.best.exists() and writer.best_acc == 0.5
    writer.on_epoch(state, {"train_acc": 0.4, "val_acc": 0.75}, model, opt)
    ckpt = dn.checkpoint.read(writer.best)
    assert ckpt.rng_state["best_acc"] == 0.75 and ckpt.rng_state["train_state"]["epoch"] == 1
    assert ckpt.metadata["train_config"] == RunConfig(limit=256).to_dict()


def test_interrupt_at_the_last_step_of_an_epoch_still_resumes(tmp_path):
    config = RunConfig(epochs=2, limit=512)  # 8 steps per epoch: the only report is at step 8
    with pytest.raises(TrainingInterrupted):
        dn.train_run(config, out=tmp_path / "edge.h5", device="cpu", callbacks=[InterruptAt(1, 8)],
                     handle_signals=True)
    dn.resume(tmp_path / "edge.h5", device="cpu")
    assert run.read_run(tmp_path / "edge.h5").state.step == 0


# a short run: 3 steps per epoch, 2 epochs; a signal can land at any of its 6 steps or between epochs
SHORT = RunConfig(epochs=2, limit=96, batch_size=32, validation=32).resolved(MNIST)


class SignalAtStep:
    """Counts fit's steps (each asks the schedule for its learning rate once) and sends this process
    `signum` during step `at` (1-based, over the whole run)."""

    def __init__(self, monkeypatch, at: int, signum: int):
        from dualnet.schedules import Schedule

        self.calls, real = 0, Schedule.rate

        def counting(plan, *args, **kwargs):
            self.calls += 1
            if self.calls == at:
                os.kill(os.getpid(), signum)
            return real(plan, *args, **kwargs)

        monkeypatch.setattr(Schedule, "rate", counting)


class SignalAfterEpoch:
    """Sends `signum` from on_epoch of epoch 1: between two epochs, after its checkpoint is written."""

    def __init__(self, signum: int):
        self.signum = signum

    def on_epoch(self, state, record, model, optimizer) -> None:
        if state.epoch == 1:
            os.kill(os.getpid(), self.signum)


@pytest.fixture(scope="module")
def short_straight(tmp_path_factory):
    return dn.train_run(SHORT, out=tmp_path_factory.mktemp("straight") / "s.h5", device="cpu")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("at", range(1, 7))
def test_a_signal_at_every_step_leaves_a_checkpoint_that_resumes_bit_for_bit(tmp_path, monkeypatch,
                                                                              short_straight, at, signum):
    out = tmp_path / "cut.h5"
    with monkeypatch.context() as patch:
        SignalAtStep(patch, at, signum)
        if at == 6:  # the run's very last step: nothing is left to interrupt, the run completes
            dn.train_run(SHORT, out=out, device="cpu", handle_signals=True)
        else:
            with pytest.raises(TrainingInterrupted, match=signal.Signals(signum).name):
                dn.train_run(SHORT, out=out, device="cpu", handle_signals=True)
    stored = run.read_run(out)
    assert (stored.state.epoch, stored.state.step) == divmod(at, 3)
    if at < 6:
        resumed = dn.resume(out, device="cpu")
        assert curves(resumed.history) == curves(short_straight.history)
        assert_same_run(short_straight.model, resumed.model)
    assert_same_parameter_bytes(short_straight.model, dn.load(out))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_between_epochs_leaves_a_checkpoint_that_resumes_bit_for_bit(tmp_path, short_straight, signum):
    out = tmp_path / "between.h5"
    with pytest.raises(TrainingInterrupted, match="at the end of epoch 1"):
        dn.train_run(SHORT, out=out, device="cpu", callbacks=[SignalAfterEpoch(signum)], handle_signals=True)
    assert (run.read_run(out).state.epoch, run.read_run(out).state.step) == (1, 0)
    dn.resume(out, device="cpu")
    assert_same_parameter_bytes(short_straight.model, dn.load(out))


def test_a_state_saved_at_an_epochs_last_step_by_older_versions_resumes(tmp_path, short_straight):
    # older versions saved step == steps per epoch; resume must accept every state training saved
    model = dn.models.get(SHORT.model, seed=SHORT.seed)
    opt = SHORT.make_optimizer(model.parameters())
    from dualnet import data as data_module
    from dualnet.train import fit

    train = data_module.load(SHORT.data, "train", validation=SHORT.validation, limit=SHORT.limit)
    val = data_module.load(SHORT.data, "val", validation=SHORT.validation, limit=SHORT.limit)

    class Stop:
        def on_batch(self, state, info):
            if info["step"] == 3:
                raise TrainingInterrupted("stop", state, signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as caught:
        fit(model, train, val, epochs=2, batch_size=32, optimizer=opt, schedule=SHORT.schedule, seed=SHORT.seed,
            callbacks=[Stop()], augment_shift=SHORT.augment_shift)
    state = caught.value.state
    assert (state.epoch, state.step) == (0, 3)
    state.loss_sum, state.correct = float(state.loss_sum), int(state.correct)
    run.CheckpointWriter(tmp_path / "old.h5", SHORT).save(tmp_path / "old.h5", model, opt, state)
    dn.resume(tmp_path / "old.h5", device="cpu")
    assert_same_parameter_bytes(short_straight.model, dn.load(tmp_path / "old.h5"))


def test_a_real_sigint_to_dualnet_train_leaves_a_checkpoint_that_resumes_bit_for_bit(tmp_path):
    config = RunConfig(epochs=3, limit=640, batch_size=32, validation=64)
    straight = dn.train_run(config, out=tmp_path / "straight.h5", device="cpu")
    out = tmp_path / "cli.h5"
    args = [sys.executable, "-c", "from dualnet_cli.main import main; main()", "train", "--device", "cpu", "--json",
            "--epochs", "3", "--limit", "640", "--batch-size", "32", "--validation", "64", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # epoch 1 done: the signal lands somewhere in epoch 2
        assert '"event": "epoch"' in first, first + proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode in (0, 130), err
    if proc.returncode == 130:
        assert f"resume with: dualnet train --resume {out} --epochs 3" in err
        dn.resume(out, device="cpu")
    assert_same_parameter_bytes(straight.model, dn.load(out))




# --- changing a run's length, early stopping across a resume -------------------------------------


def test_extending_a_finished_cosine_run_starts_at_the_rate_where_it_ended(tmp_path):
    config = RunConfig(epochs=1, limit=512)  # 8 steps
    first = dn.train_run(config, out=tmp_path / "one.h5", device="cpu")
    ended = first.history[-1]["lr"]  # the rate of the run's last step
    prepared = run.resumed_run(run.read_run(tmp_path / "one.h5"), epochs=3)
    assert prepared.schedule_note == (f"extending a finished 1-epoch cosine run to 3 epochs: cosine from {ended:.3g} "
                                      "to 0 over epochs 2-3")
    extended = prepared.execute()
    segment = run.read_run(tmp_path / "one.h5").state.schedule_segments[-1]
    assert segment == dict(kind="cosine", start_step=8, end_step=24, start_lr=ended)
    rates = [h["lr"] for h in extended.history]
    assert rates[0] == ended and ended > rates[1] > rates[2]  # no jump back up to the base rate
    restarted = dn.resume(tmp_path / "one.h5", epochs=5, extend_schedule="restart", out=tmp_path / "r.h5")
    # the old behaviour, when asked for: the cosine over all 5 epochs from the base rate, its rate back up
    assert restarted.history[3]["lr"] == learning_rate("cosine", 0.02, 31, 40, 8, 5) > 100 * rates[2]


def test_resume_of_an_extension_equals_the_uninterrupted_extension_bit_for_bit(tmp_path):
    config = RunConfig(epochs=1, limit=768, batch_size=16)  # 48 steps, reports at 20, 40, 48
    dn.train_run(config, out=tmp_path / "a.h5", device="cpu")
    shutil.copy(tmp_path / "a.h5", tmp_path / "b.h5")
    straight = dn.resume(tmp_path / "a.h5", epochs=3, device="cpu")
    with pytest.raises(TrainingInterrupted, match="SIGINT received at epoch 2, step 20"):
        dn.resume(tmp_path / "b.h5", epochs=3, device="cpu", callbacks=[InterruptAt(2, 20)], handle_signals=True)
    again = run.resumed_run(run.read_run(tmp_path / "b.h5"))  # the extension is stored: nothing to re-plan
    assert again.schedule_note is None and again.state.schedule_segments[-1]["start_step"] == 48
    resumed = again.execute()
    assert_same_run(straight.model, resumed.model)
    assert curves(straight.history) == curves(resumed.history)


def test_early_stopping_survives_a_resume_bit_for_bit_and_leaves_its_checkpoints(tmp_path):
    config = RunConfig(epochs=6, limit=768, batch_size=16)

    def stopper():  # the training loss falls: "max" makes epoch 1 the best and stops after epoch 3
        return EarlyStopping("train_loss", patience=2, mode="max", restore_best=True)

    es = stopper()
    straight = dn.train_run(config, out=tmp_path / "s.h5", device="cpu", callbacks=[es])
    assert len(straight.history) == 3 and (es.stopped_epoch, es.restored_epoch) == (3, 1)
    assert straight.last.exists() and straight.best.exists() and (tmp_path / "s.earlystop.h5").exists()
    with pytest.raises(TrainingInterrupted, match="SIGINT received at epoch 2, step 20"):
        dn.train_run(config, out=tmp_path / "c.h5", device="cpu", callbacks=[stopper(), InterruptAt(2, 20)],
                     handle_signals=True)
    assert run.read_run(tmp_path / "c.h5").callbacks["early_stopping"]["best_epoch"] == 1
    es2 = stopper()
    resumed = dn.resume(tmp_path / "c.h5", device="cpu", callbacks=[es2])
    assert (es2.stopped_epoch, es2.restored_epoch, es2.reason) == (3, 1, es.reason)
    assert_same_run(straight.model, resumed.model)  # epoch 1's parameters, read back from c.earlystop.h5
    assert curves(straight.history) == curves(resumed.history)
    assert_same_run(dn.load(tmp_path / "s.h5"), dn.load(tmp_path / "c.h5"))  # the last epoch, as trained
    stored = run.read_run(tmp_path / "c.h5")
    assert stored.state.stop_reason == es.reason and stored.state.epoch == 3
    with pytest.raises(ValueError, match=r"c\.h5 stopped early after epoch 3 \(train_loss did not improve for 2 "
                                         r"epochs .*\); pass `epochs` larger than 3 to train on"):
        dn.resume(tmp_path / "c.h5")
    note = run.resumed_run(stored, epochs=8).schedule_note
    assert note is not None and note.startswith("extending an early-stopped 6-epoch cosine run to 8 epochs")


def test_a_resumed_early_stopping_must_watch_what_the_stored_one_watched(tmp_path):
    dn.train_run(RunConfig(epochs=1, limit=256), out=tmp_path / "w.h5", device="cpu",
                 callbacks=[EarlyStopping("val_loss")])
    with pytest.raises(ValueError, match=r"w\.h5: cannot resume EarlyStopping: the stored early stopping watched "
                                         r"'val_loss' \(min, min_delta 0\.0\), this one 'val_acc'"):
        dn.resume(tmp_path / "w.h5", epochs=2, callbacks=[EarlyStopping("val_acc")])


@pytest.mark.parametrize("state, rng, match", [
    (dict(schedule_segments={}), {}, r"train_state schedule_segments: \{\} is not a list"),
    (dict(schedule_segments=[dict(kind="cosine", start_step=3, end_step=8, start_lr=0.1)]), {},
     r"train_state schedule_segments: schedule segments must start at step 0"),
    (dict(stop_reason=5), {}, r"train_state stop_reason=5 is not a string"),
    ({}, dict(callbacks=[]), r"callbacks=\[\] is not a dict of callback states"),
])
def test_damaged_extension_stop_and_callback_states_are_refused(tmp_path, state, rng, match):
    model = dn.models.lenet5()
    opt = optim.make("sgd", model.parameters(), lr=0.1)
    rng_state = {"train_state": {"epoch": 1, **state}, "best_acc": 0.5, **rng}
    path = dn.save(model, tmp_path / "damaged.h5", optimizer=opt, rng_state=rng_state,
                   train_config=RunConfig(epochs=2, limit=256).resolved(MNIST).to_dict())
    with pytest.raises(CheckpointError, match=r"damaged\.h5: cannot resume: the stored run is damaged: " + match):
        run.read_run(path)
