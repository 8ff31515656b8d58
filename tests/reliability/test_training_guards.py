"""Training guards through the CLI: divergence stops the run naming the step and the layer and
keeps the last good checkpoint; running out of GPU memory suggests a smaller batch; a kernel
that fails to compile shows its compiler's log without a traceback."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import dualnet as dn
import dualnet.train as train_module
from dualnet import checkpoint
from dualnet.layers import Conv2d
from dualnet.schedules import Schedule
from dualnet_cli.main import main

QUICK = ["--device", "cpu", "--limit", "128", "--batch-size", "32", "--validation", "64", "--schedule", "none",
         "--augment-shift", "0", "--json"]


def run(argv, capsys):
    """The console entry point in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dualnet: error: "), err
    return lines[0]


# --- divergence -------------------------------------------------------------------------------


def test_exploding_lr_exits_1_naming_step_and_layer_and_keeps_the_previous_checkpoint(tmp_path, capsys):
    out = tmp_path / "run.h5"
    code, _, err = run(["train", "--epochs", "1", "--out", str(out), *QUICK], capsys)
    assert code == 0, err
    before = out.read_bytes()
    code, _, err = run(["train", "--epochs", "1", "--lr", "1e6", "--out", str(out), "--overwrite", *QUICK], capsys)
    line = one_error_line(err)
    assert code == 1
    assert re.search(r"training diverged at epoch 1, step \d+ \(global step \d+\): the loss is \w+; non-finite "
                     r"values first appear in (layer|parameter|the gradient of) (conv|fc|pool|relu)\d", line), line
    assert out.read_bytes() == before  # the good run's checkpoint is untouched and still loads
    assert checkpoint.read(out).metadata["train_config"]["lr"] == 0.02


def test_divergence_in_a_later_epoch_keeps_the_earlier_epochs_checkpoint(tmp_path, capsys, monkeypatch):
    planned_rate = Schedule.rate

    def explode_after_epoch_1(self, step):
        return planned_rate(self, step) if step < self.steps_per_epoch else 1e6

    monkeypatch.setattr(Schedule, "rate", explode_after_epoch_1)
    out = tmp_path / "run.h5"
    code, stdout, err = run(["train", "--epochs", "3", "--out", str(out), *QUICK], capsys)
    line = one_error_line(err)
    assert code == 1 and re.search(r"training diverged at epoch 2, step \d+ .* first appear in", line), line
    assert '"epoch": 1' in stdout and '"epoch": 2' not in stdout
    ckpt = checkpoint.read(out)  # epoch 1's checkpoint: loads, finite, resumable from epoch 1
    assert ckpt.rng_state["train_state"]["epoch"] == 1 and len(ckpt.history) == 1
    assert all(np.isfinite(p.data).all() for p in ckpt.model.parameters())


def test_a_non_finite_update_on_the_last_step_of_an_epoch_is_caught_before_saving(tmp_path, capsys,
                                                                                   monkeypatch):
    """The loss of the next step would show it, but the epoch's checkpoint is written first."""
    original = dn.optim.SGD.step

    def step(self):
        original(self)
        if self.steps == 4:  # the last of the 4 steps of epoch 1 (128 images, batches of 32)
            self.params[2].data[0, 0] = np.inf

    monkeypatch.setattr(dn.optim.SGD, "step", step)
    out = tmp_path / "run.h5"
    code, _, err = run(["train", "--epochs", "2", "--out", str(out), *QUICK], capsys)
    line = one_error_line(err)
    assert code == 1
    assert "training diverged by the end of epoch 1 (step 4, global step 4): parameter conv2.weight became " \
           "non-finite" in line, line
    assert not out.exists()


def test_a_non_finite_gradient_is_caught_at_its_step(tmp_path, capsys, monkeypatch):
    original = Conv2d.grad_buffers  # what every backward path of a conv layer adds its gradients into

    def grad_buffers(self):
        wgrad, bgrad = original(self)
        if self.name == "conv2":
            wgrad[0, 0, 0, 0] = np.nan  # the op adds into it: NaN stays
        return wgrad, bgrad

    monkeypatch.setattr(Conv2d, "grad_buffers", grad_buffers)
    code, _, err = run(["train", "--epochs", "1", "--out", str(tmp_path / "g.h5"), *QUICK], capsys)
    line = one_error_line(err)
    assert code == 1 and "diverged at epoch 1, step 1 " in line and "the gradient of conv2.weight" in line, line


# --- GPU out of memory ------------------------------------------------------------------------


class FakeOutOfMemory(Exception):
    """Stands in for cupy.cuda.memory.OutOfMemoryError."""


@pytest.fixture
def gpu_runs_out_of_memory(monkeypatch):
    monkeypatch.setattr(train_module, "OOM_ERRORS", (FakeOutOfMemory,))

    def forward(self, x, *args, **kwargs):
        raise FakeOutOfMemory("Out of memory allocating 1,073,741,824 bytes")

    # every way into a conv layer (alone, or in a fused step) validates its input here first
    monkeypatch.setattr(Conv2d, "input_geometry", forward)


def test_out_of_gpu_memory_in_training_suggests_half_the_batch(tmp_path, capsys, gpu_runs_out_of_memory):
    code, _, err = run(["train", "--epochs", "1", "--out", str(tmp_path / "m.h5"), *QUICK], capsys)
    assert code == 1
    assert one_error_line(err) == "dualnet: error: out of GPU memory at batch size 32 (training): try --batch-size 16"


def test_out_of_gpu_memory_in_evaluation_suggests_half_the_batch(tmp_path, capsys, gpu_runs_out_of_memory):
    ckpt = checkpoint.save(dn.models.lenet5(), tmp_path / "m.h5")
    code, _, err = run(["evaluate", str(ckpt), "--device", "cpu", "--limit", "10", "--batch-size", "250",
                     "--json"], capsys)
    assert code == 1
    assert one_error_line(err) == "dualnet: error: out of GPU memory at batch size 250 (evaluation): try " \
                                  "--batch-size 125"


def test_cupys_out_of_memory_error_is_recognised_once_cupy_is_loaded():
    cupy = pytest.importorskip("cupy")
    assert cupy.cuda.memory.OutOfMemoryError in train_module.guards.oom_errors()


def test_host_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    def forward(self, x, *args, **kwargs):
        raise MemoryError("Unable to allocate 4.00 GiB for an array")

    monkeypatch.setattr(Conv2d, "input_geometry", forward)
    code, _, err = run(["train", "--epochs", "1", "--out", str(tmp_path / "h.h5"), *QUICK], capsys)
    assert code == 1 and "out of memory (Unable to allocate 4.00 GiB" in one_error_line(err)


# --- kernel compile failure -------------------------------------------------------------------

FAKE_COMPILER = """#!/bin/sh
if [ "$1" = "--version" ]; then echo "fake-g++ 1.0"; exit 0; fi
echo "im2col.cu:12:5: error: 'oops' was not declared in this scope" >&2
echo "   12 |     oops(x);" >&2
echo "      |     ^~~~" >&2
exit 1
"""


@pytest.mark.skipif(os.name != "posix", reason="the stand-in compiler is a shell script")
def test_kernel_compile_failure_shows_the_log_below_one_error_line(tmp_path):
    cxx = tmp_path / "fake-g++"
    cxx.write_text(FAKE_COMPILER)
    cxx.chmod(0o755)
    exe = pathlib.Path(sys.executable).parent / "dualnet"
    exe = str(exe) if exe.exists() else shutil.which("dualnet")
    env = dict(os.environ, DUALNET_CXX=str(cxx), DUALNET_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([exe, "train", "--device", "emu", "--epochs", "1", "--limit", "16", "--validation", "8",
                           "--json", "--out", str(tmp_path / "k.h5")], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    first, *log = proc.stderr.splitlines()
    assert re.match(r"dualnet: error: .*fake-g\+\+ failed to compile \w+\.cu for the emulator", first), first
    assert log == ["  im2col.cu:12:5: error: 'oops' was not declared in this scope", "     12 |     oops(x);",
                   "        |     ^~~~"]
