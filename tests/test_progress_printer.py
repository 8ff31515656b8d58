"""Progress for humans (dualnet.callbacks.ProgressPrinter over tqdm): a bar redrawn in place on a
terminal, plain quarter lines in a log, on rank 0 only, and shown by default exactly where a person
is watching (dualnet.callbacks.watching)."""

from __future__ import annotations

import io
import sys
import types

import pytest

import dualnet as dn
from dualnet import callbacks
from dualnet.callbacks import ProgressPrinter, watching
from dualnet.run_config import RunConfig
from dualnet.train import recipe


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _info(step, steps=8):
    return dict(epoch=1, epochs=4, step=step, steps=steps, loss=1.0, acc=0.5, images_per_s=1000.0, lr=0.01)


def test_on_a_terminal_the_bar_redraws_in_place_and_is_cleared_for_the_epoch_line():
    err, out = Terminal(), io.StringIO()
    printer = ProgressPrinter(err, out)
    for step in range(1, 9):
        printer.on_batch(None, _info(step))
    drawn = err.getvalue()
    assert "\n" not in drawn and drawn.count("\r") >= 8
    assert "\repoch 1/4 [######------------------] 2/8 loss 1.0000 acc 50.00% 1,000 img/s lr 0.01" in drawn
    assert drawn.endswith("epoch 1/4 [########################] 8/8 loss 1.0000 acc 50.00% 1,000 img/s lr 0.01")
    printer.on_epoch(None, dict(epoch=1, train_loss=1.0, train_acc=0.5, seconds=2.0, images_per_s=64.0), None, None)
    cleared = err.getvalue()[len(drawn):]
    assert cleared.startswith("\r") and cleared.strip() == ""  # the bar leaves no trace
    assert out.getvalue() == "epoch   1: train loss 1.0000 acc 50.00%  2.0s 64 img/s\n"


def test_in_a_log_the_same_line_is_written_plainly_at_each_quarter():
    err = io.StringIO()
    printer = ProgressPrinter(err, io.StringIO())
    for step in range(1, 9):
        printer.on_batch(None, _info(step))
    lines = err.getvalue().splitlines()
    assert "\r" not in err.getvalue() and len(lines) == 4
    assert lines[1] == "epoch 1/4 [######------------------] 2/8 loss 1.0000 acc 50.00% 1,000 img/s lr 0.01"


def test_nobody_watches_a_test_but_a_notebook_or_an_interactive_terminal_is_watched(monkeypatch):
    assert not watching()
    monkeypatch.setattr(sys, "ps1", ">>> ", raising=False)
    assert not watching()  # interactive, but stderr is captured
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert watching()
    monkeypatch.delattr(sys, "ps1")
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    kernel = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: kernel))
    assert watching()


def test_fit_shows_progress_by_default_only_where_watched_and_only_on_rank_0(monkeypatch, capsys):
    train = dn.data.load("mnist", "train", limit=64)
    dn.fit(dn.models.lenet5(seed=0), train, epochs=1, batch_size=32, progress_every=1)
    assert capsys.readouterr() == ("", "")
    monkeypatch.setattr(callbacks, "watching", lambda: True)
    dn.fit(dn.models.lenet5(seed=0), train, epochs=1, batch_size=32, progress_every=1)
    out, err = capsys.readouterr()
    assert out.startswith("epoch   1: train loss ") and "epoch 1/1 [" in err
    dn.fit(dn.models.lenet5(seed=0), train, epochs=1, batch_size=32, verbose=False)
    assert capsys.readouterr() == ("", "")
    assert recipe._progress_printer(None, types.SimpleNamespace(rank=1)) == []
    assert recipe._progress_printer(True, types.SimpleNamespace(rank=1)) == []


@pytest.mark.parametrize("verbose", [None, True])
def test_train_run_shows_progress_when_asked_and_never_twice(verbose, tmp_path, capsys):
    dn.train_run(RunConfig(epochs=1, limit=64, batch_size=32), out=tmp_path / "r.h5", device="cpu", verbose=verbose)
    out, _ = capsys.readouterr()
    assert out.count("epoch   1: train loss ") == (1 if verbose else 0)
