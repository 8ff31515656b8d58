"""A training run, as the library and `dualnet train` share it: its configuration, starting it,
resuming it from its checkpoint, and the checkpoint writer that makes it resumable.

    result = dn.train_run(dn.RunConfig(epochs=2, limit=5000), out="runs/quick.h5")
    result = dn.resume("runs/quick.h5", epochs=4)   # on from where it stopped, bit for bit
    print(result.test_accuracy, result.best)

A run's checkpoint stores its configuration as the metadata `train_config` (RunConfig.to_dict())
and its progress as the rng_state `{"train_state": TrainState.to_dict(), "best_acc": float,
"callbacks": {state_key: state}}` (the last only for callbacks with state, such as EarlyStopping).
Resuming validates both with the rules a new configuration meets, so a damaged or hand-edited
file fails with a message naming the value; the stored configuration wins over new settings, so
a resumed run is the same run (`conflicts` lists settings that would change it). A changed run
length follows a stated rule (`extend_schedule`, dualnet.schedules), stored in the run's state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import pathlib
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from . import callbacks as _callbacks
from . import checkpoint, models, optim, outputs
from . import data as _data
from .backend import Device
from .backend import device as _device_scope
from .distributed import run_hooks as _run_hooks
from .errors import CheckpointError, DataError, UsageError
from .resumption import replan, stored_extras_problem
from .run_config import MAX_AUGMENT_SHIFT, OPTIONAL_CONFIG, RECIPE_FIELDS, RunConfig, check_field, recipe_line
from .sizes import build_within
from .train import TrainingInterrupted, TrainState, check_fits, evaluate, fit

__all__ = ["MAX_AUGMENT_SHIFT", "RunConfig", "StoredRun", "Run", "RunResult", "CheckpointWriter", "check_field",
           "ScheduleChangeWarning",
           "conflicts", "read_run", "recipe_line", "new_run", "resumed_run", "train_run", "resume", "best_path"]

_STATE_INTS = ("seed", "epoch", "step", "global_step", "correct", "seen")
_STATE_FLOATS = ("loss_sum", "seconds")


@dataclass
class StoredRun:
    """A run read back from its checkpoint, every stored value validated."""

    checkpoint: checkpoint.Checkpoint
    config: RunConfig
    state: TrainState
    best_acc: float
    path: pathlib.Path
    callbacks: dict = dataclasses.field(default_factory=dict)  # {state_key: state} of stateful callbacks


def read_run(path: str | os.PathLike, device: str | Device | None = None) -> StoredRun:
    """Read the run `dualnet train` (or `train_run`) stored in checkpoint `path`; the model goes on
    `device` (default: the active one). Raises CheckpointError for a file that is no checkpoint, was
    not written by a run, or holds a damaged run (naming the value)."""
    path = pathlib.Path(path)
    ckpt = checkpoint.read(path, device=device)
    stored, rng = ckpt.metadata.get("train_config"), ckpt.rng_state
    if not isinstance(stored, dict) or not isinstance(rng, dict) or not isinstance(rng.get("train_state"), dict):
        raise CheckpointError(f"{path} was not written by `dualnet train`; it cannot be resumed")

    def damaged(problem: str) -> CheckpointError:
        return CheckpointError(f"{path}: cannot resume: the stored run is damaged: {problem}")

    values = {}
    for f in dataclasses.fields(RunConfig):
        if f.name not in stored and f.name not in OPTIONAL_CONFIG:
            raise damaged(f"train_config has no {f.name!r}")
        value = stored.get(f.name, OPTIONAL_CONFIG.get(f.name))
        try:
            values[f.name] = check_field(f.name, value)
        except ValueError as exc:
            raise damaged(f"train_config {f.name}={value!r}: {exc}") from None
        if value is None and f.name in (*RECIPE_FIELDS, "optimizer", "schedule"):
            raise damaged(f"train_config {f.name}=None: a stored run holds the value its recipe chose")
    raw = rng["train_state"]
    for key in _STATE_INTS:
        value = raw.get(key, 0)
        if type(value) is not int or value < 0:
            raise damaged(f"train_state {key}={value!r} is not an int >= 0")
    for key in _STATE_FLOATS:
        value = raw.get(key, 0.0)
        if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
            raise damaged(f"train_state {key}={value!r} is not a finite number >= 0")
    base_lr = raw.get("base_lr")
    if base_lr is not None and (type(base_lr) not in (int, float) or not math.isfinite(base_lr) or base_lr <= 0):
        raise damaged(f"train_state base_lr={base_lr!r} is not a finite number > 0")
    history = raw.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise damaged("train_state history is not a list of epoch records")
    best = rng.get("best_acc", -1.0)
    if type(best) not in (int, float) or not math.isfinite(best):
        raise damaged(f"best_acc={best!r} is not a finite number")
    problem = stored_extras_problem(raw, rng, values["schedule"])
    if problem:
        raise damaged(problem)
    return StoredRun(ckpt, RunConfig(**values), TrainState.from_dict(raw), float(best), path, rng.get("callbacks", {}))


def conflicts(given: Mapping[str, Any], stored: RunConfig) -> list[tuple[str, Any, Any]]:
    """(field, given value, stored value) for every field in `given` that differs from the stored
    run's, in field order; `epochs` never conflicts (a resumed run may go on longer)."""
    return [(f.name, given[f.name], getattr(stored, f.name)) for f in dataclasses.fields(RunConfig)
            if f.name != "epochs" and f.name in given and given[f.name] != getattr(stored, f.name)]


def free_run_path(out: str | os.PathLike) -> pathlib.Path:
    """`out` if neither it nor the files a run writes beside it (`<stem>.best`, `<stem>.earlystop`)
    exist, else the first free `<stem>-2`, `<stem>-3`, ...: a default checkpoint path never
    replaces an earlier run's files."""
    out = pathlib.Path(out)
    candidate, n = out, 1
    while any(os.path.lexists(p) for p in (candidate, best_path(candidate),
                                            candidate.with_name(candidate.stem + ".earlystop" + candidate.suffix))):
        n += 1
        candidate = out.with_name(f"{out.stem}-{n}{out.suffix}")
    return candidate


def data_paths(source: str | os.PathLike) -> list[pathlib.Path]:
    """The files or folders a data source reads ("mnist" and "digits": the bundled folders)."""
    named = {"mnist": _data.bundled_mnist_dir, "digits": _data.bundled_digits_dir}.get(str(source))
    return [named()] if named is not None else [pathlib.Path(source)]


def declare_run_files(data: str | os.PathLike, out: pathlib.Path, resumed_from: pathlib.Path | None) -> None:
    """Tell the guarded writer (dualnet.outputs) what a run reads and writes, so that no checkpoint
    replaces the data, or another output, and the checkpoint --resume read is the only input replaced."""
    for path in data_paths(data):
        outputs.declare_input(path, f"input data {data}")
    if resumed_from is not None:
        outputs.declare_input(resumed_from, f"resumed checkpoint {resumed_from}", rewritable_by="checkpoint")
    try:
        outputs.declare_output(out, "checkpoint", "checkpoint")
        outputs.declare_output(best_path(out), "best-checkpoint", "best checkpoint")
    except outputs.OutputError as exc:
        raise CheckpointError(str(exc)) from None


def best_path(out: str | os.PathLike) -> pathlib.Path:
    """Where the best epoch of a run writing `out` goes: runs/x.h5 -> runs/x.best.h5."""
    out = pathlib.Path(out)
    return out.with_name(out.stem + ".best" + out.suffix)


class CheckpointWriter:
    """A fit callback: saves `out` after every epoch and `best_path(out)` whenever validation accuracy
    (training accuracy without a validation set) improves, each resumable by `resume`."""

    def __init__(self, out: str | os.PathLike, config: RunConfig, best_acc: float = -1.0):
        self.out, self.best, self.config, self.best_acc = pathlib.Path(out), best_path(out), config, best_acc
        self.stateful: list[Any] = []  # callbacks whose state_dict() goes into each checkpoint
        self.metadata: dict[str, Any] = {}  # more checkpoint metadata (a distributed run's world size, backend)

    def save(self, path: pathlib.Path, model: Any, optimizer: Any, state: TrainState) -> None:
        rng_state = {"train_state": state.to_dict(), "best_acc": self.best_acc,
                     **_callbacks.collect_states(self.stateful)}
        checkpoint.save(model, path, optimizer=optimizer, history=state.history, rng_state=rng_state,
                        train_config=self.config.to_dict(), **self.metadata)  # dn.save adds model.normalization

    def on_epoch(self, state: TrainState, record: dict, model: Any, optimizer: Any) -> None:
        acc = record.get("val_acc", record["train_acc"])
        if acc > self.best_acc:
            self.best_acc = acc
            self.save(self.best, model, optimizer, state)
        self.save(self.out, model, optimizer, state)


class ScheduleChangeWarning(UserWarning):
    """A resumed run's length changed, and with it how its learning rate goes on (the note says how)."""


@dataclass
class RunResult:
    """What a finished run leaves: its history (one dict per epoch), where its checkpoints are, the
    best validation accuracy, the test accuracy (None for data without a test split), fit's seconds."""

    model: Any
    history: list[dict]
    last: pathlib.Path
    best: pathlib.Path
    best_acc: float
    test_accuracy: float | None
    seconds: float


@dataclass
class Run:
    """A run ready to train: checked, data loaded, model and optimizer built, nothing trained yet
    (so a caller can print what will happen before `execute`)."""

    config: RunConfig
    model: Any
    optimizer: optim.Optimizer
    train_set: _data.Dataset
    val_set: _data.Dataset
    test_set: _data.Dataset | None
    writer: CheckpointWriter
    state: TrainState | None = None
    callback_states: dict = dataclasses.field(default_factory=dict)  # stored ones, given back on execute
    schedule_note: str | None = None  # one line when the run's length changed (how the rate goes on)
    recipe_note: str = ""  # one line: the model and recipe the run follows (`recipe_line`)

    @property
    def out(self) -> pathlib.Path:
        return self.writer.out

    def execute(self, callbacks: Iterable[Any] = (), handle_signals: bool = False, comm: Any = None) -> RunResult:
        """Train to `config.epochs`, checkpointing every epoch, then evaluate the test split.

        `callbacks` run before the checkpoint writer (see `dn.fit`); those with a `state_key` get
        their stored state back and have it saved with every checkpoint. With handle_signals, SIGINT
        and SIGTERM stop the run at the next step; either way an interrupted run saves a resumable
        checkpoint to `out` and re-raises TrainingInterrupted. With `comm` (dualnet.distributed) the run
        is data-parallel: the ranks first agree on the configuration and the data (else DistributedError,
        dualnet.distributed.agreement); `callbacks` and the checkpoints are rank 0's only
        (dualnet.distributed.run_hooks).
        """
        c = self.config
        _run_hooks.agree(comm, c.to_dict(), {"train": self.train_set, "val": self.val_set, "test": self.test_set})
        callbacks = _run_hooks.rank_callbacks(comm, [*callbacks, self.writer], self.writer)
        self.writer.stateful = _callbacks.attach(callbacks, self.callback_states, self.out)
        started = time.perf_counter()
        try:
            history = fit(self.model, self.train_set, self.val_set, epochs=c.epochs, batch_size=c.batch_size,
                          optimizer=self.optimizer, schedule=c.schedule, seed=c.seed,
                          callbacks=callbacks, augment_shift=c.augment_shift, state=self.state,
                          augment_crop=c.augment_crop or 0, augment_flip=bool(c.augment_flip),
                          clip_grad_norm=c.clip_grad, handle_signals=handle_signals, comm=comm, verbose=False)
        except TrainingInterrupted as exc:
            with _run_hooks.one_writer(comm) as lead:
                if lead:
                    self.writer.save(self.out, self.model, self.optimizer, exc.state)
            raise
        seconds = time.perf_counter() - started
        test_accuracy = None if self.test_set is None else evaluate(self.model, self.test_set)["accuracy"]
        return RunResult(self.model, history, self.out, self.writer.best, self.writer.best_acc, test_accuracy,
                         seconds)


def new_run(config: RunConfig, out: str | os.PathLike | None = None, free_default: bool = False) -> Run:
    """A new run of `config` on the active device, writing `out` (default runs/<model>.h5; with
    `free_default`, the first free runs/<model>-N.h5 when that exists: `free_run_path`). Fields left at
    None are resolved from the data (`RunConfig.resolved`); the model is built for the data's image shape
    and class count."""
    splits = _load_splits(config)
    train_set = splits[0]
    try:
        config = config.resolved(train_set.shape).replace(num_classes=train_set.num_classes)
        # refused from its weights' shapes, before they are drawn, if the data makes it too large
        model = build_within(lambda: models.get(config.model, seed=config.seed, input_shape=train_set.shape,
                                                num_classes=max(1, train_set.num_classes)),
                             f"model {config.model} for the images of shape {'x'.join(map(str, train_set.shape))} "
                             f"and {train_set.num_classes} classes of {config.data}", "--model or --data")
    except ValueError as exc:
        raise DataError(f"data {config.data} has images {train_set.shape}: {exc}") from None
    if config.normalize:
        model.normalization = _data.channel_stats(train_set)
    if out is None and free_default:  # `dualnet train` without --out: never replace an earlier run
        out = free_run_path(pathlib.Path("runs") / f"{config.model}.h5")
    return _ready(config, model, None, out, None, -1.0, None, splits)


def resumed_run(stored: StoredRun, epochs: int | None = None, out: str | os.PathLike | None = None,
                extend_schedule: str = "anneal") -> Run:
    """The stored run continued to `epochs` in all (default: the stored target), writing `out`
    (default: the checkpoint it was read from). A run that finished (or stopped early) goes on
    only with more `epochs`; the learning rate then follows `extend_schedule` (dualnet.schedules),
    stated in `Run.schedule_note`."""
    config = stored.config if epochs is None else stored.config.replace(epochs=epochs)
    optimizer = stored.checkpoint.make_optimizer()
    if optimizer is None:
        raise CheckpointError(f"{stored.path} holds no optimizer state; it cannot be resumed")
    state, done = stored.state, stored.state.epoch
    if state.stop_reason and (epochs is None or epochs <= done):
        raise UsageError(f"{stored.path} stopped early after epoch {done} ({state.stop_reason}); pass `epochs` "
                         f"larger than {done} to train on")
    if config.epochs is not None and done >= config.epochs:
        raise UsageError(f"{stored.path} has already trained {done} epochs; pass `epochs` larger than {done} "
                         "to continue")
    splits = _load_splits(config)
    if config.num_classes is None:  # a run stored before the class count was recorded
        config = config.replace(num_classes=splits[0].num_classes)
    norm = stored.checkpoint.metadata.get("normalization")
    if config.normalize or norm is not None:
        if norm is None:
            raise CheckpointError(f"{stored.path}: cannot resume: the run normalizes its inputs but the checkpoint "
                                  "has no 'normalization' metadata")
        stored.checkpoint.model.normalization = _data.check_normalization(norm, splits[0].shape[0],
                                                                                 str(stored.path))
    prepared = _ready(config, stored.checkpoint.model, optimizer, out or stored.path, state, stored.best_acc,
                      stored.path, splits)
    prepared.callback_states = stored.callbacks
    if config.epochs != stored.config.epochs or state.stop_reason:
        steps = math.ceil(len(prepared.train_set) / config.batch_size)
        prepared.schedule_note = replan(state, config.schedule, config.lr, steps, stored.config.epochs,
                                        config.epochs, extend_schedule)
    return prepared


def _load_splits(config: RunConfig) -> tuple[_data.Dataset, _data.Dataset, _data.Dataset | None]:
    """(train, val, test or None) of the run's data; an empty training split is refused."""
    how = dict(limit=config.limit, num_classes=config.num_classes, stream=config.stream, **config.data_options())
    train_set = _data.load(config.data, "train", validation=config.validation, **how)
    val_set = _data.load(config.data, "val", validation=config.validation, **how)
    test_set = _data.load_test_or_none(config.data, **how)
    if len(train_set) == 0:
        held = "the default validation split" if config.validation is None else f"`validation={config.validation}`"
        raise DataError(f"data {config.data}: the training split is empty (0 images after holding out "
                        f"{held}); lower `validation` or give more data")
    return train_set, val_set, test_set


def _ready(config: RunConfig, model: Any, optimizer: optim.Optimizer | None, out: str | os.PathLike | None,
           state: TrainState | None, best_acc: float, resumed_from: pathlib.Path | None,
           splits: tuple[_data.Dataset, _data.Dataset, _data.Dataset | None]) -> Run:
    """Everything fit would refuse, refused before any training time is spent."""
    out = pathlib.Path(out) if out is not None else pathlib.Path("runs") / f"{config.model}.h5"
    declare_run_files(config.data, out, resumed_from)
    checkpoint.check_writable(out)
    train_set, val_set, test_set = splits
    model_shape = tuple(model.input_shape or ())
    if model_shape and tuple(train_set.shape) != model_shape:
        raise DataError(f"data {config.data} has images {train_set.shape}, but model {config.model} expects "
                        f"{model_shape}")
    for split in (train_set, val_set, test_set):  # every split, before any training time is spent
        if split is not None:
            check_fits(model, split)
    steps = math.ceil(len(train_set) / config.batch_size)
    if state is not None and not 0 <= state.step <= steps:
        raise CheckpointError(f"{resumed_from}: cannot resume at step {state.step} of an epoch of {steps} steps: "
                              "the stored state does not match its data")
    if optimizer is None:
        optimizer = config.make_optimizer(model.parameters())
    writer = CheckpointWriter(out, config, best_acc)
    # class names, and how an image folder's pictures were prepared, so `predict` prepares a photo alike
    writer.metadata.update(_data.source_metadata(config.data, **config.data_options()))
    return Run(config, model, optimizer, train_set, val_set, test_set, writer, state,
               recipe_note=recipe_line(config, train_set.shape))


@contextlib.contextmanager
def _on(device: str | Device | None) -> Iterator[None]:
    if device is None:
        yield
    else:
        with _device_scope(device):
            yield


def train_run(config: RunConfig, out: str | os.PathLike | None = None, device: str | Device | None = None,
              callbacks: Iterable[Any] = (), handle_signals: bool = False, verbose: bool | None = None) -> RunResult:
    """Train a new run of `config` as `dualnet train` does, on `device` (default: the active one),
    checkpointing to `out` (default runs/<model>.h5) and its best epoch to `best_path(out)`. Progress
    shows as in `dn.fit`: `verbose=None` where a person is watching (a notebook, an interactive terminal)."""
    with _on(device), outputs.command():
        return new_run(config, out).execute(_with_progress(callbacks, verbose), handle_signals)


def resume(path: str | os.PathLike, epochs: int | None = None, device: str | Device | None = None,
           callbacks: Iterable[Any] = (), out: str | os.PathLike | None = None,
           handle_signals: bool = False, extend_schedule: str = "anneal", verbose: bool | None = None) -> RunResult:
    """Continue the run stored in checkpoint `path` exactly where it stopped, as `dualnet train --resume`
    does: to `epochs` in all (default: the stored target), on `device` (default: the active one),
    writing `out` (default: `path` itself). The result equals an uninterrupted run's, bit for bit, on
    the CPU. Beyond the stored plan (or after an early stop) the learning rate follows
    `extend_schedule`: "anneal" (from the rate where the run ended), "constant" or "restart" (see
    dualnet.schedules)."""
    with _on(device), outputs.command():
        prepared = resumed_run(read_run(path), epochs, out, extend_schedule)
        if prepared.schedule_note:  # reported as `dualnet train --resume` prints it
            warnings.warn(prepared.schedule_note, ScheduleChangeWarning, stacklevel=2)
        return prepared.execute(_with_progress(callbacks, verbose), handle_signals)


def _with_progress(callbacks: Iterable[Any], verbose: bool | None) -> list[Any]:
    """`callbacks` and, if `verbose` (None: if a person is watching), the progress printer."""
    callbacks = list(callbacks)
    if _callbacks.watching() if verbose is None else verbose:
        callbacks.append(_callbacks.ProgressPrinter())
    return callbacks
