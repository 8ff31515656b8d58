"""Callbacks for `dn.fit`: early stopping, CSV and TensorBoard logs, the progress printer.

    dn.fit(model, train, val, epochs=50, callbacks=[
        dn.callbacks.EarlyStopping("val_loss", patience=5, restore_best=True),
        dn.callbacks.CSVLogger("runs/log.csv")], verbose=True)

The protocol (see `dn.fit`): optional methods `on_batch(state, info)`, `on_epoch(state, record,
model, optimizer)`, `on_train_end(state, model, optimizer)`; a callback ends training after the
current epoch with `state.request_stop(reason)`. A callback whose state must survive a resume
has `state_key`, `state_dict()` (JSON-ready) and `load_state_dict(d)`: a run's checkpoint
(dualnet.run) stores it and `dn.resume` gives it back, so a resumed run stops where the
uninterrupted one would. `attach_run(out)` tells a callback the checkpoint path of the run.
"""

from __future__ import annotations

import csv
import io
import math
import os
import pathlib
import socket
import struct
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from . import outputs
from .backend import to_device, to_numpy
from .errors import DualnetError, UsageError, whole_number
from .optional import load
from .progress_printer import ProgressPrinter, watching

__all__ = ["EarlyStopping", "CSVLogger", "TensorBoard", "ProgressPrinter", "watching", "collect_states", "attach",
           "TENSORBOARD_HINT"]

TENSORBOARD_HINT = 'TensorBoard logs need tensorboardX: pip install "dualnet[tensorboard]"'


class EarlyStopping:
    """Stop when `monitor` (a key of fit's epoch records) has not improved for `patience` epochs.

    Keras's semantics: an epoch improves when the value beats the best by more than `min_delta`;
    mode "min"/"max" says which way is better, "auto" picks max for accuracies ("acc" in the
    name) and min otherwise; after `patience` epochs without improvement training stops. With
    `restore_best` the best epoch's parameters and buffers are put back when fit ends (stopped or
    not); they are kept in memory and, when `best_copy` is set (dualnet.run sets
    `<out>.earlystop.h5`), in that checkpoint file too, so that a resumed run can restore an epoch
    that an earlier process trained. After fit: `stopped_epoch` (0: did not stop) and `reason`,
    `best_epoch`, `best`, `restored_epoch` (None: nothing restored).
    """

    state_key = "early_stopping"

    def __init__(self, monitor: str = "val_loss", patience: int = 5, mode: str = "auto", min_delta: float = 0.0,
                 restore_best: bool = False, best_copy: str | os.PathLike | None = None):
        if whole_number(patience) is None:
            raise UsageError(f"EarlyStopping: patience must be an integer >= 1, got {patience!r}")
        if mode not in ("auto", "min", "max"):
            raise UsageError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if not isinstance(min_delta, (int, float)) or not math.isfinite(min_delta) or min_delta < 0:
            raise UsageError(f"EarlyStopping: min_delta must be a finite number >= 0, got {min_delta!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, float(min_delta)
        self.mode = mode if mode != "auto" else ("max" if "acc" in monitor else "min")
        self.restore_best = restore_best
        self.best_copy = pathlib.Path(best_copy) if best_copy is not None else None
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0
        self.stopped_epoch = 0
        self.restored_epoch: int | None = None
        self.reason: str | None = None  # why it stopped training
        self._kept: tuple[int, dict[str, np.ndarray]] | None = None  # (epoch, host copies)

    def attach_run(self, out: str | os.PathLike) -> None:
        if self.restore_best and self.best_copy is None:
            out = pathlib.Path(out)
            self.best_copy = out.with_name(out.stem + ".earlystop" + out.suffix)

    def declare_outputs(self) -> None:
        """Check the best-epoch copy's path now, as an output of the current command (dualnet.outputs)."""
        if self.best_copy is not None:
            outputs.declare_output(self.best_copy, "early-stop-copy", "early-stop copy")

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch(self, state: Any, record: dict, model: Any, optimizer: Any) -> None:
        if self.monitor not in record:
            raise DualnetError(f"EarlyStopping: the epoch record has no {self.monitor!r} (it has "
                               f"{', '.join(record)}); monitor one of those"
                               + (", or train with a validation set" if self.monitor.startswith("val_") else ""))
        value, epoch = float(record[self.monitor]), int(record["epoch"])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self._keep(model, epoch)
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            delta = f" by more than {self.min_delta:g}" if self.min_delta else ""
            self.reason = (f"{self.monitor} did not improve{delta} for {self.wait} epoch{'s' if self.wait > 1 else ''} "
                           f"(best {self.best:.4g} at epoch {self.best_epoch})")
            state.request_stop(self.reason)

    def _keep(self, model: Any, epoch: int) -> None:
        self._kept = (epoch, {name: np.array(to_numpy(a), copy=True) for name, a in _tensors(model)})
        if self.best_copy is not None:
            from . import checkpoint
            checkpoint.save(model, self.best_copy, early_stopping_epoch=epoch, monitor=self.monitor,
                            best=self.best)

    def on_train_end(self, state: Any, model: Any, optimizer: Any) -> None:
        if not self.restore_best or not self.best_epoch or self.best_epoch == state.epoch:
            return  # nothing better than what the model holds
        if self._kept is not None and self._kept[0] == self.best_epoch:
            arrays = self._kept[1]
        else:
            arrays = self._read_copy(model)
        for name, a in _tensors(model):
            a[...] = to_device(arrays[name], model.device)
        self.restored_epoch = self.best_epoch

    def _read_copy(self, model: Any) -> dict[str, np.ndarray]:
        from . import checkpoint
        where = self.best_copy
        if where is None or not where.exists():
            raise DualnetError(f"EarlyStopping: cannot restore epoch {self.best_epoch}'s parameters: an earlier "
                               "process kept them in memory only; pass best_copy=PATH to keep them in a file")
        ckpt = checkpoint.read(where, device=model.device)
        stored = ckpt.metadata.get("early_stopping_epoch")
        if stored != self.best_epoch:
            raise DualnetError(f"EarlyStopping: {where} holds epoch {stored}'s parameters, not the best epoch "
                               f"{self.best_epoch}'s; it belongs to another run")
        return {name: to_numpy(a) for name, a in _tensors(ckpt.model)}

    def state_dict(self) -> dict[str, Any]:
        return dict(monitor=self.monitor, mode=self.mode, min_delta=self.min_delta, best=self.best,
                    best_epoch=self.best_epoch, wait=self.wait, stopped_epoch=self.stopped_epoch)

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Raises ValueError when `d` is damaged or watched another quantity."""
        if (d.get("monitor"), d.get("mode"), d.get("min_delta")) != (self.monitor, self.mode, self.min_delta):
            raise UsageError(f"the stored early stopping watched {d.get('monitor')!r} ({d.get('mode')}, min_delta "
                             f"{d.get('min_delta')}), this one {self.monitor!r} ({self.mode}, min_delta "
                             f"{self.min_delta}); resume with the same setting")
        best = d.get("best")
        if best is not None and (type(best) not in (int, float) or not math.isfinite(best)):
            raise UsageError(f"early stopping best={best!r} is not a finite number")
        for key in ("best_epoch", "wait", "stopped_epoch"):
            if type(d.get(key)) is not int or d[key] < 0:
                raise UsageError(f"early stopping {key}={d.get(key)!r} is not an int >= 0")
        self.best = None if best is None else float(best)
        self.best_epoch, self.wait, self.stopped_epoch = d["best_epoch"], d["wait"], d["stopped_epoch"]


def _tensors(model: Any) -> list[tuple[str, Any]]:
    """Every parameter's data and every buffer of `model`, by name."""
    named = [(f"param:{n}", p.data) for n, p in model.named_parameters()]
    if hasattr(model, "named_buffers"):
        named += [(f"buffer:{n}", b) for n, b in model.named_buffers()]
    return named


class CSVLogger:
    """One row per epoch, the epoch record's keys as columns, written to `path` after each epoch
    (the whole file, through the guarded writer dualnet.outputs: a crash never leaves half a row,
    and an input of the run, a directory, FIFO or device is never replaced).

    With `append`, rows already in the file are kept, except those for epochs from this fit's
    first epoch on: a resumed run (`append=True`) neither repeats nor loses an epoch. Without it
    the file starts afresh. The earlier file is read only if it is a regular file of at most
    MAX_LOG_BYTES, and any line the csv module cannot parse is refused in one line.
    """

    #: an epoch log of this size holds hundreds of thousands of epochs: anything larger is not one
    MAX_LOG_BYTES = 64 * 2**20

    def __init__(self, path: str | os.PathLike, append: bool = False):
        self.path, self.append = pathlib.Path(path), append
        self._rows: list[dict[str, Any]] | None = None

    def declare_outputs(self) -> None:
        """Check the log's path now, as an output of the current command (dualnet.outputs)."""
        outputs.declare_output(self.path, "csv-log", "CSV log")

    def _existing(self, first_epoch: int) -> list[dict[str, Any]]:
        if not self.append:
            return []
        data = outputs.readable_output(self.path, "the CSV log", self.MAX_LOG_BYTES)
        if data is None:
            return []

        def foreign(problem: str) -> DualnetError:
            return DualnetError(f"CSVLogger: {self.path} {problem}; it is no epoch log written by dualnet: pass "
                                "another path, or append=False to overwrite it")

        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise foreign("is not UTF-8 text") from None
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            rows = list(reader)
        except csv.Error as exc:  # a field over csv.field_size_limit(), a NUL byte, ...
            raise foreign(f"line {reader.line_num}: {exc}") from None
        try:
            return [r for r in rows if int(r["epoch"]) < first_epoch]
        except (KeyError, TypeError, ValueError):
            raise foreign("has no epoch column of integers") from None

    def on_epoch(self, state: Any, record: dict, model: Any, optimizer: Any) -> None:
        if self._rows is None:
            self._rows = self._existing(int(record["epoch"]))
        self._rows.append(dict(record))
        columns = list(dict.fromkeys(k for row in self._rows for k in row))
        text = io.StringIO()
        writer = csv.DictWriter(text, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self._rows)
        outputs.write_text(self.path, text.getvalue(), "CSV log")


class TensorBoard:
    """Every number of each epoch record as a scalar (global step: the epoch) under `logdir`, in
    TensorBoard's event format (tensorboardX's protocol buffers: `pip install "dualnet[tensorboard]"`).

    Each fit writes one event file of its own,
    `events.out.tfevents.<time>.<host>.<pid>.<number>.from-epoch-<N>` (a name no other file has),
    replaced whole after each epoch through the guarded writer (dualnet.outputs): the folder must
    not be an input's, and no file is opened in place. A resumed run's file starts with a session
    restart at its first epoch (tensorboardX's purge_step), so TensorBoard shows each epoch once.
    """

    def __init__(self, logdir: str | os.PathLike):
        # first the package itself (its submodules may be cached while it is not), and one line
        # for a tensorboardX that is missing or fails on import
        load("tensorboardX", TENSORBOARD_HINT, 'pip install --force-reinstall "dualnet[tensorboard]"', DualnetError)
        from tensorboardX.proto.event_pb2 import Event, SessionLog
        from tensorboardX.record_writer import masked_crc32c
        from tensorboardX.summary import scalar
        self.logdir = pathlib.Path(logdir)
        self._proto = (Event, SessionLog, scalar, masked_crc32c)
        self._writer: pathlib.Path | None = None
        self.written: pathlib.Path | None = None  # the event file of the last fit, once it has ended
        self._records: list[bytes] = []

    def declare_outputs(self) -> None:
        """Check the folder now, as an output of the current command (dualnet.outputs)."""
        outputs.declare_output(self.logdir, "tensorboard", "TensorBoard folder", folder=True)

    def _frame(self, event: Any) -> bytes:
        """One TFRecord: u64 length, its masked crc32c, the payload, the payload's masked crc32c."""
        masked_crc32c = self._proto[3]
        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))

    def on_epoch(self, state: Any, record: dict, model: Any, optimizer: Any) -> None:
        Event, SessionLog, scalar, _ = self._proto
        epoch = int(record["epoch"])
        if self._writer is None:
            folder = outputs.output_folder(self.logdir, "TensorBoard folder")
            self._writer = _free_event_file(folder, epoch)
            self._records = [self._frame(Event(wall_time=time.time(), file_version="brain.Event:2")),
                             self._frame(Event(step=epoch, file_version="brain.Event:2")),
                             self._frame(Event(step=epoch, session_log=SessionLog(status=SessionLog.START)))]
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self._records.append(self._frame(Event(wall_time=time.time(), step=epoch,
                                                       summary=scalar(key, float(value)))))
        outputs.write_bytes(self._writer, b"".join(self._records), "TensorBoard event file")

    def on_train_end(self, state: Any, model: Any, optimizer: Any) -> None:
        # the file this fit wrote stays known (the CLI's `wrote:` line); the next fit starts its own
        self.written = self._writer
        self._writer, self._records = None, []


def _free_event_file(folder: pathlib.Path, epoch: int) -> pathlib.Path:
    """A new event file's path in `folder`: named by the second, as tensorboardX does, then the
    process and a number free in the folder, so no other fit's file (another process, or this one,
    within the same second) is replaced; the epoch suffix keeps a resumed run's parts in
    TensorBoard's by-name order."""
    stem = f"events.out.tfevents.{str(time.time())[:10]}.{socket.gethostname()}.{os.getpid()}"
    for number in range(1, 10_000):
        path = folder / f"{stem}.{number}.from-epoch-{epoch:06d}"
        if not os.path.lexists(path):
            return path
    raise UsageError(f"{folder}: 10,000 TensorBoard event files of this process in one second; "
                     "give each run its own --tensorboard folder")


def collect_states(callbacks: Iterable[Any]) -> dict[str, dict]:
    """{"callbacks": {state_key: state_dict()}} for the callbacks that have state to keep, or {}."""
    states = {cb.state_key: cb.state_dict() for cb in callbacks if hasattr(cb, "state_key")}
    return {"callbacks": states} if states else {}


def attach(callbacks: Iterable[Any], stored: dict[str, Any], out: pathlib.Path) -> list[Any]:
    """Ready `callbacks` for the run writing `out`: each with a `state_key` gets its `stored` state
    back (ValueError naming `out` if it does not fit), each with `attach_run` learns `out`, each with
    `declare_outputs` checks its files as outputs of the current command (dualnet.outputs).
    Returns the callbacks whose state the run's checkpoints keep."""
    stateful = []
    for cb in callbacks:
        key = getattr(cb, "state_key", None)
        if key is not None:
            stateful.append(cb)
            if key in stored:
                try:
                    cb.load_state_dict(stored[key])
                except ValueError as exc:
                    raise UsageError(f"{out}: cannot resume {type(cb).__name__}: {exc}") from None
        if hasattr(cb, "attach_run"):
            cb.attach_run(out)
        if hasattr(cb, "declare_outputs"):
            cb.declare_outputs()
    return stateful
