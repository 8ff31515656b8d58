"""`dualnet train --early-stop / --log-csv / --tensorboard / --extend-schedule`, and their resume."""

from __future__ import annotations

import csv
import json
import math
import re
import signal
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import dualnet as dn
from dualnet.run import RunConfig
from dualnet.testing import tensorboard_scalars
from dualnet.train import TrainingInterrupted
from dualnet_cli.main import cli, main

# 300 images, batches of 32; with this rate val_loss stops improving after a few epochs
QUICK = ["--limit", "300", "--validation", "200", "--batch-size", "32", "--lr", "0.05", "--schedule", "none",
         "--device", "cpu"]


def train(args):
    result = CliRunner().invoke(cli, ["train", *args])
    assert result.exit_code == 0, result.output
    return result


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def learned(row):
    return {k: v for k, v in row.items() if k not in ("seconds", "images_per_s")}


def keras_stop(val_losses, patience):
    """The epoch Keras's rule stops at, computed from the logged losses alone (None: never)."""
    best, wait = math.inf, 0
    for epoch, value in enumerate(val_losses, 1):
        if value < best:
            best, wait = value, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch
    return None


def test_early_stop_csv_and_tensorboard_survive_a_resume_exactly(tmp_path):
    pytest.importorskip("tensorboardX")
    a, b = tmp_path / "a", tmp_path / "b"
    full = train(["--epochs", "8", "--early-stop", "1", "--out", f"{a}.h5", "--log-csv", f"{a}.csv",
                  "--tensorboard", f"{a}-tb", *QUICK])
    logged = rows(f"{a}.csv")
    stop = keras_stop([float(r["val_loss"]) for r in logged], patience=1)
    assert stop is not None and stop < 8 and len(logged) == stop  # the run stopped where the rule says
    best = int(np.argmin([float(r["val_loss"]) for r in logged])) + 1
    assert f"stopped early after epoch {stop}: val_loss did not improve for 1 epoch (best " in full.output
    assert f"model: the parameters of epoch {best} (best val_loss), also saved to {a}.earlystop.h5" in full.output
    # the same run in two parts: 2 epochs, then resumed (a constant rate continues unchanged)
    train(["--epochs", "2", "--early-stop", "1", "--out", f"{b}.h5", "--log-csv", f"{b}.csv",
           "--tensorboard", f"{b}-tb", *QUICK])
    resumed = train(["--resume", f"{b}.h5", "--epochs", "8", "--early-stop", "1", "--log-csv", f"{b}.csv",
                     "--tensorboard", f"{b}-tb", "--device", "cpu", "--json"])
    events = [json.loads(line) for line in resumed.output.splitlines() if line.startswith("{")]
    assert events[0] == {"event": "schedule", "note": "extending a finished 2-epoch none run to 8 epochs: "
                                                      "constant 0.05 over epochs 3-8"}
    done = events[-1]
    assert done["stopped_early"].startswith("val_loss did not improve for 1 epoch") and done["restored_epoch"] == best
    assert [learned(r) for r in rows(f"{b}.csv")] == [learned(r) for r in logged]
    for ours, theirs in ((f"{a}.h5", f"{b}.h5"), (f"{a}.earlystop.h5", f"{b}.earlystop.h5")):
        for p, q in zip(dn.load(ours).parameters(), dn.load(theirs).parameters(), strict=True):
            assert np.array_equal(p.data, q.data)
    tb_a, tb_b = tensorboard_scalars(tmp_path / "a-tb"), tensorboard_scalars(tmp_path / "b-tb")
    assert sorted(tb_b["val_loss"]) == list(range(1, stop + 1)) and tb_b["val_loss"] == tb_a["val_loss"]


def test_resuming_a_finished_run_prints_how_the_schedule_is_extended(tmp_path):
    out = tmp_path / "c.h5"
    train(["--epochs", "1", "--limit", "256", "--device", "cpu", "--out", str(out)])
    ended = dn.checkpoint.read(out).history[-1]["lr"]
    result = train(["--resume", str(out), "--epochs", "3", "--device", "cpu"])
    assert (f"extending a finished 1-epoch cosine run to 3 epochs: cosine from {ended:.3g} to 0 over epochs 2-3"
            in result.output)
    result = train(["--resume", str(out), "--epochs", "4", "--extend-schedule", "restart", "--device", "cpu"])
    assert "extending a finished 3-epoch cosine run to 4 epochs: cosine restarted from the base rate 0.02" in \
        result.output


@pytest.mark.parametrize("argv, code, pattern", [
    (["train", "--extend-schedule", "constant", "--epochs", "1"], 2, r"--extend-schedule applies to --resume only"),
    (["train", "--early-stop", "2", "--validation", "0", "--limit", "64"], 2,
     r"--early-stop watches val_loss, but this run has no validation split \(--validation 0\)"),
    (["train", "--early-stop", "0"], 2, r"Invalid value for '--early-stop'"),
])
def test_callback_option_mistakes_print_one_line(argv, code, pattern, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--device", "cpu", "--out", str(tmp_path / "x.h5")])
    err = capsys.readouterr().err
    assert info.value.code == code and len(err.strip().splitlines()) == 1 and re.search(pattern, err), err


def test_tensorboard_without_tensorboardx_is_one_line_with_the_install_command(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(SystemExit) as info:
        main(["train", "--tensorboard", str(tmp_path / "tb"), "--limit", "64", "--device", "cpu",
              "--out", str(tmp_path / "x.h5")])
    err = capsys.readouterr().err
    assert info.value.code == 1
    assert err == 'dualnet: error: TensorBoard logs need tensorboardX: pip install "dualnet[tensorboard]"\n'


def test_extend_schedule_on_a_run_that_keeps_its_plan_is_refused(tmp_path, capsys):
    class InterruptAtStep20:
        def on_batch(self, state, info):
            if info["step"] == 20:
                signal.raise_signal(signal.SIGINT)

    out = tmp_path / "cut.h5"
    with pytest.raises(TrainingInterrupted):
        dn.train_run(RunConfig(epochs=2, limit=768, batch_size=16), out=out, device="cpu",
                     callbacks=[InterruptAtStep20()], handle_signals=True)
    with pytest.raises(SystemExit) as info:
        main(["train", "--resume", str(out), "--extend-schedule", "constant", "--device", "cpu"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert f"--extend-schedule has nothing to extend: {out} goes on to its planned 2 epochs; pass a larger " \
           "--epochs" in err
