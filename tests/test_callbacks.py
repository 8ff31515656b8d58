"""dualnet.callbacks and fit's stop protocol: EarlyStopping, CSVLogger, TensorBoard, ProgressPrinter."""

from __future__ import annotations

import csv
import sys

import numpy as np
import pytest

import dualnet as dn
from dualnet.callbacks import CSVLogger, EarlyStopping, ProgressPrinter, TensorBoard
from dualnet.errors import DualnetError
from dualnet.testing import tensorboard_scalars
from dualnet.train import TrainState


@pytest.fixture(scope="module")
def tiny():
    return dn.data.load("mnist", "train", limit=256), dn.data.load("mnist", "val", limit=128)


def feed(cb, values, key="val_loss"):
    """Run `cb.on_epoch` over one record per value; returns the epoch after which it asked to stop."""
    state = TrainState()
    for epoch, value in enumerate(values, 1):
        state.epoch = epoch
        cb.on_epoch(state, {"epoch": epoch, key: value}, None, None)
        if state.stop_reason:
            return epoch, state.stop_reason
    return None, None


def params(model):
    return [dn.to_numpy(p.data).copy() for p in model.parameters()]


# --- EarlyStopping's rule ------------------------------------------------------------------------


def test_early_stopping_auto_mode_maximises_accuracies_and_minimises_the_rest():
    assert EarlyStopping("val_acc").mode == "max" and EarlyStopping("train_acc").mode == "max"
    assert EarlyStopping("val_loss").mode == "min" and EarlyStopping("lr").mode == "min"
    assert EarlyStopping("val_acc", mode="min").mode == "min"


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    stop, reason = feed(EarlyStopping(patience=2), [1.0, 0.9, 0.95, 0.91, 0.5])
    assert stop == 4 and reason == "val_loss did not improve for 2 epochs (best 0.9 at epoch 2)"
    assert feed(EarlyStopping(patience=2), [1.0, 0.9, 0.95, 0.8, 0.85, 0.7])[0] is None


def test_early_stopping_min_delta_counts_small_gains_as_no_improvement():
    cb = EarlyStopping("val_acc", patience=2, min_delta=0.01)
    stop, reason = feed(cb, [0.5, 0.505, 0.509, 0.6], key="val_acc")
    assert stop == 3 and cb.best_epoch == 1 and "did not improve by more than 0.01 for 2 epochs" in reason


def test_early_stopping_treats_nan_as_no_improvement():
    assert feed(EarlyStopping(patience=1), [1.0, float("nan")])[0] == 2


def test_early_stopping_names_a_missing_quantity_and_its_bad_arguments():
    with pytest.raises(DualnetError, match=r"no 'val_loss' \(it has epoch, train_loss\); monitor one of those, "
                                           r"or train with a validation set"):
        EarlyStopping().on_epoch(TrainState(), {"epoch": 1, "train_loss": 1.0}, None, None)
    with pytest.raises(ValueError, match="patience must be an integer >= 1, got 0"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="mode must be 'auto', 'min' or 'max', got 'up'"):
        EarlyStopping(mode="up")


def test_early_stopping_state_round_trips_and_refuses_another_quantity():
    a = EarlyStopping(patience=3)
    feed(a, [1.0, 0.8, 0.9])
    b = EarlyStopping(patience=3)
    b.load_state_dict(a.state_dict())
    assert (b.best, b.best_epoch, b.wait) == (0.8, 2, 1)
    with pytest.raises(ValueError, match=r"watched 'val_loss' \(min, min_delta 0\.0\), this one 'val_acc' \(max"):
        EarlyStopping("val_acc").load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match=r"early stopping wait=-1 is not an int >= 0"):
        b.load_state_dict({**a.state_dict(), "wait": -1})


# --- in fit ---------------------------------------------------------------------------------------


class Recorder:
    def __init__(self):
        self.epochs, self.ended = [], 0

    def on_epoch(self, state, record, model, optimizer):
        self.epochs.append(record["epoch"])

    def on_train_end(self, state, model, optimizer):
        self.ended += 1


def test_fit_stops_after_the_epoch_a_callback_asks_and_still_runs_that_epochs_other_callbacks(tiny):
    train, _ = tiny
    later = Recorder()

    class StopAt2:
        def on_epoch(self, state, record, model, optimizer):
            if record["epoch"] == 2:
                state.request_stop("enough")

    model = dn.models.lenet5(seed=0)
    history = dn.fit(model, train, epochs=5, schedule="none", callbacks=[StopAt2(), later])
    assert len(history) == 2 and later.epochs == [1, 2] and later.ended == 1


def test_restore_best_puts_back_the_best_epochs_parameters_and_buffers(tiny):
    train, val = tiny
    model = dn.models.get("lenet5-bn", seed=0)
    kept = {}

    class Snapshot:
        def on_epoch(self, state, record, model, optimizer):
            kept[record["epoch"]] = (params(model), [dn.to_numpy(b).copy() for _, b in model.named_buffers()])

    # training loss falls, so "max" makes epoch 1 the best and stops at epoch 3
    es = EarlyStopping("train_loss", patience=2, mode="max", restore_best=True)
    history = dn.fit(model, train, val, epochs=6, schedule="none", callbacks=[es, Snapshot()])
    assert len(history) == 3 and (es.stopped_epoch, es.best_epoch, es.restored_epoch) == (3, 1, 1)
    assert not np.array_equal(kept[1][0][0], kept[3][0][0])
    assert all(np.array_equal(a, b) for a, b in zip(params(model), kept[1][0]))
    buffers = [dn.to_numpy(b) for _, b in model.named_buffers()]
    assert buffers and all(np.array_equal(a, b) for a, b in zip(buffers, kept[1][1]))


def test_verbose_prints_the_cli_progress_and_why_training_stopped(tiny, capsys):
    train, val = tiny
    es = EarlyStopping("train_loss", patience=1, mode="max")
    dn.fit(dn.models.lenet5(seed=0), train, val, epochs=4, batch_size=32, schedule="none", callbacks=[es],
           progress_every=2, verbose=True)
    out, err = capsys.readouterr()
    assert "epoch 1/4 [######------------------] 2/8 loss " in err and " img/s lr 0.01" in err
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["epoch   1", "epoch   2"] and "val loss" in lines[0]
    assert lines[2] == f"stopped early after epoch 2: {es.reason}"


def test_progress_printer_prints_a_quarter_line_per_epoch_quarter_in_a_log(capsys):
    printer = ProgressPrinter()
    for step in range(1, 9):
        printer.on_batch(None, dict(epoch=1, epochs=1, step=step, steps=8, loss=1.0, acc=0.5, images_per_s=10.0,
                                    lr=0.1))
    assert [line.split("]")[1].split()[0] for line in capsys.readouterr().err.splitlines()] == ["1/8", "2/8", "4/8",
                                                                                                 "6/8"]


# --- CSVLogger ------------------------------------------------------------------------------------


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_logger_writes_one_row_per_epoch_with_the_records_keys(tiny, tmp_path):
    train, val = tiny
    history = dn.fit(dn.models.lenet5(seed=0), train, val, epochs=2, callbacks=[CSVLogger(tmp_path / "log.csv")])
    rows = read_csv(tmp_path / "log.csv")
    assert [list(r) for r in rows] == [list(h) for h in history]
    assert [float(r["val_loss"]) for r in rows] == [h["val_loss"] for h in history]  # exact: repr round trip


def test_csv_logger_append_drops_rows_from_the_resumed_epoch_on_and_overwrite_starts_afresh(tmp_path):
    path = tmp_path / "log.csv"
    first = CSVLogger(path)
    for epoch in (1, 2, 3):
        first.on_epoch(None, {"epoch": epoch, "loss": epoch / 10}, None, None)
    resumed = CSVLogger(path, append=True)  # resumed from epoch 1's checkpoint: epochs 2, 3 again
    for epoch in (2, 3, 4):
        resumed.on_epoch(None, {"epoch": epoch, "loss": epoch / 100}, None, None)
    assert [(r["epoch"], r["loss"]) for r in read_csv(path)] == [("1", "0.1"), ("2", "0.02"), ("3", "0.03"),
                                                                 ("4", "0.04")]
    CSVLogger(path).on_epoch(None, {"epoch": 1, "loss": 9.0}, None, None)
    assert read_csv(path) == [{"epoch": "1", "loss": "9.0"}]


def test_csv_logger_refuses_to_append_to_a_file_that_is_no_epoch_log(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("name,value\na,1\n")
    with pytest.raises(DualnetError, match=r"other\.csv has no epoch column of integers"):
        CSVLogger(path, append=True).on_epoch(None, {"epoch": 1}, None, None)


# --- TensorBoard ----------------------------------------------------------------------------------


def test_tensorboard_writes_every_number_of_each_epoch_and_closes_at_the_end(tiny, tmp_path):
    pytest.importorskip("tensorboardX")
    train, val = tiny
    tb = TensorBoard(tmp_path / "tb")
    history = dn.fit(dn.models.lenet5(seed=0), train, val, epochs=2, callbacks=[tb])
    assert tb._writer is None  # closed
    shown = tensorboard_scalars(tmp_path / "tb")
    assert set(shown) == set(history[0]) - {"epoch"}
    assert shown["val_loss"] == {1: pytest.approx(history[0]["val_loss"]), 2: pytest.approx(history[1]["val_loss"])}


def test_two_fits_in_one_second_into_one_tensorboard_folder_keep_both_event_files(tiny, tmp_path, monkeypatch):
    # event files are named by the second: a second fit (another process, or the same one) that
    # starts within it must not replace the first's file
    pytest.importorskip("tensorboardX")
    import dualnet.callbacks as callbacks

    train, val = tiny
    monkeypatch.setattr(callbacks.time, "time", lambda: 1_800_000_000.25)
    first, second = TensorBoard(tmp_path / "tb"), TensorBoard(tmp_path / "tb")
    dn.fit(dn.models.lenet5(seed=0), train, val, epochs=1, callbacks=[first])
    kept = first.written.read_bytes()
    dn.fit(dn.models.lenet5(seed=1), train, val, epochs=1, callbacks=[second])
    assert first.written != second.written
    assert first.written.read_bytes() == kept
    assert len(list((tmp_path / "tb").iterdir())) == 2


def test_tensorboard_without_tensorboardx_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    hint = r'^TensorBoard logs need tensorboardX: pip install "dualnet\[tensorboard\]"$'
    with pytest.raises(DualnetError, match=hint):
        TensorBoard("tb")
