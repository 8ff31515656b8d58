"""`dn.fit`: the training loop as a recipe over its parts.

    guards      RunGuards: signals, NumPy's error state, the device scope, out-of-memory (guards.py)
    strategy    SingleProcess, or DataParallel over a communicator (strategy.py, dualnet.distributed)
    batches     DeviceBatches or HostBatches: where each step's batch comes from (batches.py)
    step        Step: forward, loss, backward, gradient sync, clipping, divergence check, update (step.py)
    progress    Progress: the epoch's clock and its progress points, on_batch callbacks (progress.py)
    epoch end   EpochEnd: record, checks, validation, on_epoch callbacks, stop decisions (epoch_end.py)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ..errors import positive_int
from ..schedules import SCHEDULES, Schedule
from .batches import batch_source
from .checks import check_fits, check_resumable
from .epoch_end import EpochEnd, stop_inside_epoch
from .evaluation import evaluate
from .guards import RunGuards
from .progress import Progress
from .state import TrainState
from .step import Step
from .strategy import make_strategy
from .tally import make_tally


def fit(model: Any, train: Any, val: Any = None, epochs: int = 10, batch_size: int = 64,
        optimizer: Any = None, schedule: str = "none", seed: int = 0,
        callbacks: Iterable[Any] = (), augment_shift: int = 0, state: TrainState | None = None,
        progress_every: int = 20, clip_grad_norm: float | None = None,
        handle_signals: bool = False, verbose: bool | None = None, augment_crop: int = 0,
        augment_flip: bool = False, comm: Any = None) -> list[dict]:
    """Train `model` on `train` (a dualnet.data.Dataset) and return the history.

    Each history entry (one per epoch): epoch, train_loss, train_acc, val_loss, val_acc, lr,
    seconds, images_per_s. `callbacks` are objects with optional methods
    `on_batch(state, info)` (every `progress_every` steps: info has loss, acc, images_per_s,
    step, steps), `on_epoch(state, record, model, optimizer)` (after each epoch, in order) and
    `on_train_end(state, model, optimizer)` (once, when fit returns normally). A callback stops
    training by calling `state.request_stop(reason)` in `on_epoch`: the epoch's remaining
    callbacks still run (so checkpoints are saved), then fit returns, leaving the reason in
    `state.stop_reason` (see dualnet.callbacks: EarlyStopping, CSVLogger, TensorBoard). Pass
    `state` (from a checkpoint) to resume exactly where a run stopped; a stopped state trains no
    further. `verbose=True` shows progress as `dualnet train` does (dualnet.callbacks.ProgressPrinter:
    a tqdm bar on a terminal, a widget in a notebook, plain lines in a log), on rank 0 only;
    `verbose=None` does so where a person is watching (dualnet.callbacks.watching: a notebook or
    an interactive session on a terminal), not in scripts and tests. The learning rate
    follows `schedule` over `epochs`, or the segments in `state.schedule_segments`
    (dualnet.schedules). `comm` (dualnet.distributed.communicator()) trains data-parallel: each
    rank takes `batch[rank::size]` of every global batch of `batch_size` (see dualnet.distributed).
    `augment_shift`, `augment_crop` (padding) and `augment_flip` augment each training batch
    (dn.data.augment_batch: pure functions of (seed, epoch, step)). A model with an input
    normalization (`model.normalization`, see dn.data.normalize) gets every batch normalized,
    after any augmentation. With `handle_signals`, SIGINT/SIGTERM end the run after the current
    step with TrainingInterrupted, whose `state` resumes it exactly.

    Guards: data the model cannot take raises DataError before any step (`check_fits`); a loss
    or gradient that turns NaN/inf raises TrainingDiverged naming the step and the layer (checked
    every step on the CPU, every `progress_every` steps on a GPU, and on the parameters at each
    epoch's end, before the callbacks save anything); running out of GPU memory raises
    DeviceOutOfMemory suggesting half the batch size.
    """
    from ..optim import SGD

    epochs, batch_size = positive_int(epochs, "epochs", "fit"), positive_int(batch_size, "batch_size", "fit")
    _check_options(schedule, augment_shift, augment_crop, train)
    for split in (train, val) if val is not None else (train,):
        check_fits(model, split)
    optimizer = optimizer or SGD(model.parameters(), lr=0.01, momentum=0.9)
    strategy = make_strategy(comm, model, optimizer, state or TrainState(seed=seed), batch_size, len(train))
    state = strategy.state
    state.base_lr = base_lr = optimizer.lr if state.base_lr is None else state.base_lr
    steps = math.ceil(len(train) / batch_size)
    plan = _plan(schedule, base_lr, state, steps, epochs)
    check_resumable(state, steps)
    callbacks = [*callbacks, *_progress_printer(verbose, strategy)]
    step = Step(model, optimizer, strategy, plan, clip_grad_norm, progress_every)
    progress = Progress(callbacks, epochs, steps, progress_every)
    epoch_end = EpochEnd(model, optimizer, val, strategy, callbacks, evaluate, epochs, steps)
    with batch_source(train, model, strategy, batch_size, state.seed, (augment_shift, augment_crop, augment_flip)) \
            as batches, RunGuards(model.device, batch_size, handle_signals) as guards:
        while state.epoch < epochs and not state.stop_reason:
            batches.start_epoch(state.epoch, state.step)
            model.train()
            tally = strategy.tally(lambda loss_sum, correct: make_tally(
                model.device, model, optimizer, progress_every, loss_sum, correct), state)
            progress.start_epoch(state)
            for s in range(state.step, steps):
                step(batches.batch(s), state, tally, state.epoch)
                progress.after_step(tally, state, state.epoch, optimizer.lr)
                # on an epoch's last step the epoch is finished first, so that a stop saves an epoch boundary
                signum = strategy.decide_stop(guards.raised)
                if signum is not None and state.step < steps:
                    raise stop_inside_epoch(state, tally, progress.seconds(), signum)
            epoch_end(state, tally, progress.seconds(), guards)
        for cb in callbacks:
            if hasattr(cb, "on_train_end"):
                cb.on_train_end(state, model, optimizer)
    return state.history


def _check_options(schedule: str, augment_shift: int, augment_crop: int, train: Any) -> None:
    if schedule not in SCHEDULES:
        raise ValueError(f"fit: unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if augment_shift < 0 or augment_crop < 0:
        raise ValueError(f"fit: augment_shift and augment_crop must be >= 0, got {augment_shift} and {augment_crop}")
    if len(train) == 0:
        raise ValueError("fit: the training set is empty")


def _plan(schedule: str, base_lr: float, state: TrainState, steps: int, epochs: int) -> Schedule:
    """The learning rate at each global step: `schedule` over `epochs`, or the state's segments."""
    plan = Schedule.of_run(schedule, base_lr, steps, epochs, state.schedule_segments)
    if state.schedule_segments and plan.end_step != steps * epochs:
        raise ValueError(f"fit: the state's schedule segments end at step {plan.end_step}, but {epochs} epochs "
                         f"of {steps} steps end at {steps * epochs}: extend the schedule to the new "
                         "length (dualnet.schedules.extend) or clear state.schedule_segments")
    return plan


def _progress_printer(verbose: bool | None, strategy: Any) -> list[Any]:
    """The progress printer `verbose` asks for (None: if a person is watching), on rank 0 only: one
    job, one printer."""
    from ..callbacks import ProgressPrinter, watching

    if strategy.rank != 0 or not (watching() if verbose is None else verbose):
        return []
    return [ProgressPrinter()]
