"""The CLI, through click's CliRunner and through the installed `dualnet` executable."""

from __future__ import annotations

import json
import pathlib
import re
import signal
import subprocess
import time

import numpy as np
import pytest
from cli_helpers import run_main
from click.testing import CliRunner

from dualnet_cli.main import cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One quick training run shared by the tests that need a checkpoint."""
    out = tmp_path_factory.mktemp("run") / "lenet5.h5"
    result = CliRunner().invoke(cli, ["train", "--epochs", "1", "--limit", "600", "--device", "cpu",
                                      "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out, [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def test_train_json_reports_epochs_and_test_accuracy(trained):
    out, events = trained
    assert [e["event"] for e in events] == ["epoch", "done"]
    assert events[0]["epoch"] == 1 and 0 < events[0]["train_loss"] < 3
    assert events[1]["last"] == str(out) and pathlib.Path(events[1]["best"]).exists()
    assert 0.3 < events[1]["test_accuracy"] <= 1


def test_evaluate_prints_the_same_test_accuracy_as_train(trained):
    out, events = trained
    result = CliRunner().invoke(cli, ["evaluate", str(out), "--limit", "600", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.splitlines()[-1])
    assert report["accuracy"] == pytest.approx(events[1]["test_accuracy"], abs=1e-12)
    assert np.array(report["confusion"]).sum() == 600


def test_evaluate_human_output_has_per_class_and_confusion(trained):
    result = CliRunner().invoke(cli, ["evaluate", str(trained[0]), "--limit", "200", "--device", "cpu"])
    assert result.exit_code == 0
    assert "test accuracy" in result.output and "per-class accuracy: 0:" in result.output
    assert "true\\pred" in result.output


def test_predict_classifies_npy_images(trained, tmp_path):
    import dualnet as dn

    test = dn.data.load("mnist", "test", limit=3)
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"digit{i}.npy")
        np.save(paths[-1], (test.images[i, 0] * 255).astype(np.uint8))
    result = CliRunner().invoke(cli, ["predict", str(trained[0]), *map(str, paths), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["file"] for r in rows] == list(map(str, paths))
    model = dn.load(trained[0])
    model.eval()
    # the CLI feeds the MNIST-style preparation of each file (dualnet.data.prepare)
    from dualnet.data import prepare

    expected = model(prepare.load_inputs(paths, (1, 28, 28))).argmax(axis=1)
    assert [r["class"] for r in rows] == expected.tolist()
    for r in rows:
        probs = [t["probability"] for t in r["top"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6


def test_info_commands():
    runner = CliRunner()
    devices = runner.invoke(cli, ["devices"])
    assert devices.exit_code == 0 and re.search(r"^cpu\s+available", devices.output, re.M)
    assert re.search(r"^gpu", devices.output, re.M) and re.search(r"^emu", devices.output, re.M)
    models = runner.invoke(cli, ["models"])
    assert "lenet5" in models.output and "61,706" in models.output and "lenet5-separable" in models.output
    assert "61,706 trainable parameters" in runner.invoke(cli, ["summary", "lenet5"]).output


def test_gradcheck_command_passes_and_prints_a_table():
    result = CliRunner().invoke(cli, ["gradcheck", "--layer", "all", "--examples", "2", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "conv2d" in result.output and "all gradients match" in result.output


@pytest.mark.parametrize("argv,code,pattern", [
    (["train", "--epochs", "0"], 2, "--epochs"),
    (["train", "--optimizer", "rmsprop"], 2, "rmsprop"),
    (["train", "--device", "tpu", "--epochs", "1"], 2, "unknown device 'tpu'"),
    (["train", "--data", "/nonexistent/folder", "--epochs", "1", "--limit", "10", "--device", "cpu"], 1,
     "/nonexistent"),
    (["evaluate", "/nonexistent.h5", "--device", "cpu"], 1, "nonexistent.h5"),
    (["summary", "resnet"], 2, "resnet"),
    (["frobnicate"], 2, "frobnicate"),
])
def test_user_mistakes_print_one_line_and_exit_nonzero(argv, code, pattern, capsys):
    rc, out, err = run_main(argv, capsys)
    assert rc == code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dualnet: error:") and pattern in lines[0], err
    assert "Traceback" not in err


def test_gpu_request_without_gpu_exits_1_with_reason(capsys):
    from dualnet.backend import _cupy_status

    if _cupy_status(0)[0]:
        pytest.skip("a GPU is usable here")
    rc, _, err = run_main(["train", "--device", "gpu", "--epochs", "1"], capsys)
    assert rc == 1 and "unavailable" in err and ("install" in err or "use --device" in err)


def test_resume_continues_to_the_same_parameters(tmp_path):
    import dualnet as dn

    runner = CliRunner()
    # a constant learning rate: a cosine schedule's shape depends on the planned epoch count
    common = ["--limit", "256", "--device", "cpu", "--batch-size", "64", "--schedule", "none", "--json"]
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    assert runner.invoke(cli, ["train", "--epochs", "2", "--out", str(a), *common]).exit_code == 0
    assert runner.invoke(cli, ["train", "--epochs", "1", "--out", str(b), *common]).exit_code == 0
    resumed = runner.invoke(cli, ["train", "--resume", str(b), "--epochs", "2", *common])
    assert resumed.exit_code == 0, resumed.output
    ma, mb = dn.load(a), dn.load(b)
    assert all(np.array_equal(p.data, q.data) for p, q in zip(ma.parameters(), mb.parameters()))


def test_installed_executable_trains_and_reports(tmp_path, dualnet_executable):
    out = tmp_path / "exe.h5"
    proc = subprocess.run([dualnet_executable, "train", "--epochs", "1", "--limit", "300", "--device", "emu",
                           "--out", str(out)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "device: emu" in proc.stderr and "61,706 trainable parameters" in proc.stderr
    assert "test accuracy" in proc.stdout and out.exists()


def test_installed_executable_reports_errors_in_one_line(tmp_path, dualnet_executable):
    proc = subprocess.run([dualnet_executable, "evaluate", str(tmp_path / "missing.h5")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "missing.h5" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_a_resumable_checkpoint_and_exits_130(tmp_path, sig, dualnet_executable):
    out = tmp_path / "sig.h5"
    proc = subprocess.Popen([dualnet_executable, "train", "--epochs", "50", "--limit", "3000", "--device", "cpu",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    deadline = time.time() + 120
    while not out.exists() and time.time() < deadline:  # wait for the first epoch's checkpoint
        time.sleep(0.1)
    time.sleep(0.3)
    proc.send_signal(sig)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"resume with: dualnet train --resume {out}" in err
    assert stdout.splitlines()[-1] == f"wrote: {out}"  # the closing line of every command that writes
    import dualnet as dn

    ckpt = dn.checkpoint.read(out)
    state = ckpt.rng_state["train_state"]
    assert state["epoch"] >= 1 and ckpt.metadata["train_config"]["limit"] == 3000
