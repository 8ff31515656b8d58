"""The progress printer of `dn.fit` and `dualnet train` (tqdm's bar, or plain lines in a log), and
whether a person is watching (so `verbose=None` shows progress exactly then)."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["ProgressPrinter", "watching"]


class ProgressPrinter:
    """Progress for humans, as `dualnet train` prints it: a bar per epoch with running loss,
    accuracy, images/s and learning rate on `stream` (default stderr), a summary line per epoch on
    `out` (default stdout), and why training stopped early. The bar is tqdm's (`tqdm.auto`): on a
    terminal it redraws in place, in a Jupyter notebook it is a widget; where `stream` is neither
    (a log, CI) the same line is printed plainly at each quarter of the epoch, so logs stay short."""

    width = 24

    def __init__(self, stream: Any = None, out: Any = None):
        self.stream = stream or sys.stderr
        self.out = out or sys.stdout
        self.tty = _isatty(self.stream)
        self.live = self.tty or (self.stream is sys.stderr and _in_notebook())
        self._quarter = -1
        self._bar: Any = None

    def _write(self, text: str, stream: Any) -> None:
        stream.write(text)
        stream.flush()

    def _format(self, info: dict) -> str:
        """tqdm's bar_format for this progress point: the epoch, the bar, the step and the running numbers."""
        return (f"epoch {info['epoch']}/{info['epochs']} [{{bar:{self.width}}}] {{n_fmt}}/{{total_fmt}} "
                f"loss {info['loss']:.4f} acc {info['acc']:.2%} {info['images_per_s']:,.0f} img/s "
                f"lr {info['lr']:.4g}")

    def on_batch(self, state: Any, info: dict) -> None:
        from tqdm.auto import tqdm

        fmt = self._format(info)
        if self.live:
            if self._bar is None:
                self._bar = tqdm(total=info["steps"], file=self.stream, ascii="-#", leave=False, bar_format=fmt)
            self._bar.bar_format = fmt
            self._bar.n = info["step"]
            self._bar.refresh()
            return
        quarter = int(info["step"] / info["steps"] * 4)
        if quarter != self._quarter and quarter < 4:
            self._quarter = quarter
            line = tqdm.format_meter(info["step"], info["steps"], 0.0, ascii="-#", bar_format=fmt)
            self._write(line + "\n", self.stream)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_epoch(self, state: Any, record: dict, model: Any, optimizer: Any) -> None:
        self._quarter = -1
        self._close_bar()
        val = (f"  val loss {record['val_loss']:.4f} acc {record['val_acc']:.2%}" if "val_acc" in record else "")
        self._write(f"epoch {record['epoch']:>3}: train loss {record['train_loss']:.4f} acc "
                    f"{record['train_acc']:.2%}{val}  {record['seconds']:.1f}s {record['images_per_s']:,.0f} img/s\n",
                    self.out)

    def on_train_end(self, state: Any, model: Any, optimizer: Any) -> None:
        self._close_bar()
        if state.stop_reason:
            self._write(f"stopped early after epoch {state.epoch}: {state.stop_reason}\n", self.out)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (where tqdm.auto draws a widget)."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def watching() -> bool:
    """Whether a person is likely watching this process: a Jupyter notebook, or an interactive
    interpreter (python -i, the REPL, IPython) on a terminal; not a script, a test or a pipe.
    `dn.fit(verbose=None)` and `dn.train_run(verbose=None)` show progress exactly then."""
    if _in_notebook():
        return True
    interactive = hasattr(sys, "ps1") or bool(sys.flags.interactive) or "IPython" in sys.modules and \
        getattr(sys.modules["IPython"], "get_ipython", lambda: None)() is not None
    return interactive and _isatty(sys.stderr)
