"""Progress for humans: a bar per epoch with running loss, accuracy and images/s."""

from __future__ import annotations

import sys

import click


class ProgressPrinter:
    """A `fit` callback. On a terminal the bar redraws in place; in a log it prints a line at
    each quarter of the epoch, so logs stay short."""

    width = 24

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._quarter = -1

    def on_batch(self, state, info) -> None:
        frac = info["step"] / info["steps"]
        filled = int(self.width * frac)
        bar = "#" * filled + "-" * (self.width - filled)
        line = (f"epoch {info['epoch']}/{info['epochs']} [{bar}] {info['step']}/{info['steps']} "
                f"loss {info['loss']:.4f} acc {info['acc']:.2%} {info['images_per_s']:,.0f} img/s "
                f"lr {info['lr']:.4g}")
        if self.tty:
            click.echo("\r" + line, nl=False, file=self.stream)
        else:
            quarter = int(frac * 4)
            if quarter != self._quarter and quarter < 4:
                self._quarter = quarter
                click.echo(line, file=self.stream)

    def on_epoch(self, state, record, model, optimizer) -> None:
        self._quarter = -1
        if self.tty:
            click.echo("\r" + " " * 110 + "\r", nl=False, file=self.stream)
        val = (f"  val loss {record['val_loss']:.4f} acc {record['val_acc']:.2%}" if "val_acc" in record else "")
        click.echo(f"epoch {record['epoch']:>3}: train loss {record['train_loss']:.4f} acc "
                   f"{record['train_acc']:.2%}{val}  {record['seconds']:.1f}s {record['images_per_s']:,.0f} img/s")
