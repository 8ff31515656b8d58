"""`dualnet train` on other data: the model and recipe chosen by the data, --num-classes, colour HDF5
files end to end (train, evaluate, pictures), and the data options' refusals."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import dualnet as dn
from dualnet import run
from dualnet_cli.main import cli, main


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_main(argv, capsys):
    """The console entry point in-process (errors mapped to one line): (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_colour_h5_trains_resnet8_then_evaluates_and_draws(tmp_path, colour_h5, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    trained = invoke("train", "--data", str(colour_h5), "--epochs", "1", "--limit", "24", "--validation", "8",
                     "--device", "cpu", "--plot")
    assert trained.exit_code == 0, trained.output
    assert "model resnet8 (recipe colour for 3x32x32 images, 5 classes)" in trained.output
    assert "crop 4 + flip, normalized per channel" in trained.output
    ckpt = tmp_path / "runs" / "resnet8.h5"
    stored = run.read_run(ckpt)
    assert tuple(stored.checkpoint.model.input_shape) == (3, 32, 32)
    assert stored.checkpoint.model.output_shape((3, 32, 32)) == (5,)
    assert len(stored.checkpoint.metadata["normalization"]["std"]) == 3
    assert (tmp_path / "runs" / "resnet8.curves.png").stat().st_size > 0
    evaluated = invoke("evaluate", str(ckpt), "--data", str(colour_h5), "--device", "cpu", "--json",
                       "--plot", str(tmp_path / "eval.png"))
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout.splitlines()[-1])
    model = dn.load(ckpt)
    assert report["n"] == 32 and report["accuracy"] == dn.evaluate(model, dn.data.load(colour_h5, "test"))["accuracy"]
    assert (tmp_path / "eval.png").stat().st_size > 0
    streamed = invoke("evaluate", str(ckpt), "--data", str(colour_h5), "--device", "cpu", "--json", "--stream")
    assert json.loads(streamed.output.splitlines()[-1])["accuracy"] == report["accuracy"]
    for command in (("filters", str(ckpt)), ("featuremaps", str(ckpt), "--data", str(colour_h5), "--index", "0")):
        drawn = invoke(*command)
        assert drawn.exit_code == 0, drawn.output


def test_digits_picks_digits_cnn_and_num_classes_widens_the_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "--data", "digits", "--epochs", "1", "--limit", "64", "--num-classes", "12",
                    "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "model digits-cnn (recipe digits for 1x8x8 images, 12 classes): 1 epoch, batch 32" in result.output
    assert run.read_run(tmp_path / "runs" / "digits-cnn.h5").config.num_classes == 12


def test_num_classes_below_the_labels_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(["train", "--data", "digits", "--num-classes", "3", "--device", "cpu"], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("dualnet: error: ")
    assert "is outside [0, 3)" in lines[0]


def test_a_default_checkpoint_of_the_chosen_model_is_not_replaced(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "digits-cnn.h5").write_bytes(b"earlier")
    code, out, err = run_main(["train", "--data", "digits", "--epochs", "1", "--limit", "100", "--device", "cpu"],
                              capsys)
    # issue 20.8: a default output that exists gets a free name (it used to be refused)
    assert code == 0, err
    assert "checkpoints: last runs/digits-cnn-2.h5, best runs/digits-cnn-2.best.h5" in out
    assert (tmp_path / "runs" / "digits-cnn.h5").read_bytes() == b"earlier"


def test_evaluate_takes_the_runs_validation_split_and_streams(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert invoke("train", "--data", "digits", "--epochs", "1", "--validation", "100", "--device", "cpu").exit_code == 0
    ckpt = str(tmp_path / "runs" / "digits-cnn.h5")
    val = invoke("evaluate", ckpt, "--data", "digits", "--split", "val", "--device", "cpu", "--json")
    assert val.exit_code == 0, val.output
    assert json.loads(val.output.splitlines()[-1])["n"] == 100
