"""`dualnet train`'s callback options (--early-stop, --log-csv, --tensorboard, --extend-schedule):
the options, the library callbacks they build, and the lines they print after a run."""

from __future__ import annotations

import pathlib

import click

from dualnet.callbacks import CSVLogger, EarlyStopping, TensorBoard
from dualnet.schedules import EXTENSIONS


def callback_options(command):
    """Decorate the train command with the callback options (parameters early_stop, log_csv,
    tensorboard, extend_schedule)."""
    options = [
        click.option("--early-stop", type=click.IntRange(1), default=None, metavar="N",
                     help="Stop when val_loss has not improved for N epochs; the model then returns to its "
                          "best val_loss epoch (kept in <out>.earlystop.h5)."),
        click.option("--log-csv", type=click.Path(dir_okay=False, path_type=pathlib.Path), default=None,
                     metavar="FILE", help="Write one row per epoch to FILE (a resumed run appends)."),
        click.option("--tensorboard", type=click.Path(file_okay=False, path_type=pathlib.Path), default=None,
                     metavar="DIR", help='Write TensorBoard scalars to DIR (pip install "dualnet[tensorboard]").'),
        click.option("--extend-schedule", type=click.Choice(EXTENSIONS), default=None,
                     help="With --resume and more --epochs than planned: how the learning rate goes on "
                          "[default: anneal, from the rate where the run ended].")]
    for option in reversed(options):
        command = option(command)
    return command


def build_callbacks(early_stop: int | None, log_csv: pathlib.Path | None, tensorboard: pathlib.Path | None,
                    resuming: bool, has_validation: bool) -> list:
    """The callbacks the options ask for, refusing (one line) what cannot work."""
    callbacks: list = []
    if early_stop is not None:
        if not has_validation:
            raise click.UsageError("--early-stop watches val_loss, but this run has no validation split "
                                   "(--validation 0): give --validation N")
        callbacks.append(EarlyStopping("val_loss", patience=early_stop, restore_best=True))
    if log_csv is not None:
        callbacks.append(CSVLogger(log_csv, append=resuming))
    if tensorboard is not None:
        callbacks.append(TensorBoard(tensorboard))  # a missing tensorboardX is a one-line DualnetError
    return callbacks


def summary(callbacks: list) -> dict:
    """What early stopping did, for the run's final report: {"stopped_early": reason,
    "restored_epoch": epoch, "restored_from": path}, each only when it happened."""
    done: dict = {}
    for cb in callbacks:
        if isinstance(cb, EarlyStopping):
            if cb.stopped_epoch:
                done["stopped_early"] = cb.reason
            if cb.restored_epoch:
                done.update(restored_epoch=cb.restored_epoch, restored_from=str(cb.best_copy))
    return done


def summary_lines(done: dict, monitor: str = "val_loss") -> list[str]:
    """The human lines for `summary` (the stop itself is printed by the progress printer)."""
    if "restored_epoch" not in done:
        return []
    return [f"model: the parameters of epoch {done['restored_epoch']} (best {monitor}), also saved to "
            f"{done['restored_from']}"]
