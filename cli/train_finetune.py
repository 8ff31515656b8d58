"""`dualnet train --init-from CKPT --freeze PATTERN`: fine-tuning options of the train command."""

from __future__ import annotations

import pathlib

import click

from dualnet import finetune
from dualnet.errors import CheckpointError


def finetune_options(command):
    """Decorate the train command with --init-from and --freeze (parameters init_from, freeze)."""
    options = [
        click.option("--init-from", type=click.Path(dir_okay=False, path_type=pathlib.Path), default=None,
                     help="Start a new run from this checkpoint's parameters and batch-norm statistics that match "
                          "the model by name and shape (another class count: the head starts fresh)."),
        click.option("--freeze", multiple=True, metavar="PATTERN",
                     help="Freeze the layers whose name matches this glob (e.g. 'conv*', 'bn*'; repeatable): no "
                          "gradient, no update; a frozen BatchNorm also keeps its running statistics."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def refuse_with_resume(init_from: pathlib.Path | None, freeze: tuple[str, ...], resumed: bool) -> None:
    """A resumed run keeps its checkpoint's parameters and frozen layers: the options are refused."""
    if resumed and (init_from or freeze):
        raise click.UsageError("--init-from and --freeze start a new run; a resumed run keeps the parameters and "
                               "frozen layers stored in its checkpoint")


def apply_finetune(model, init_from: pathlib.Path | None, freeze: tuple[str, ...]) -> list[str]:
    """Load --init-from and freeze --freeze on a new run's model; the lines to print (one-line click
    errors for mistakes)."""
    lines: list[str] = []
    if init_from is not None:
        if not init_from.is_file():
            raise click.BadParameter(f"{init_from} is not a file", param_hint="--init-from")
        try:
            copied, skipped = finetune.init_from(model, init_from)
        except CheckpointError as exc:
            raise click.ClickException(str(exc)) from None
        lines.append(f"init from {init_from}: {len(copied)} parameters and buffers copied"
                     + (f"; kept fresh: {', '.join(skipped)}" if skipped else ""))
    if freeze:
        try:
            frozen = finetune.freeze(model, freeze)
        except ValueError as exc:
            raise click.BadParameter(str(exc).removeprefix("--freeze "), param_hint="--freeze") from None
        lines.append(f"frozen: {', '.join(frozen)}")
    return lines
