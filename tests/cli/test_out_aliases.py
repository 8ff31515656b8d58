"""-o/--out names the one output of every command (issue 23 item 6); the older spellings stay
accepted: export's positional OUT, evaluate's --plot, predict's --show-input, train's --out."""

from __future__ import annotations

import pathlib
import shutil

import pytest
from click.testing import CliRunner

from dualnet_cli.main import cli

CORPUS = pathlib.Path(__file__).resolve().parents[1] / "reliability" / "corpus"


def invoke(args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def ckpt(tmp_path) -> pathlib.Path:
    return pathlib.Path(shutil.copy(CORPUS / "good" / "tiny.h5", tmp_path / "tiny.h5"))


@pytest.mark.parametrize("flag", ["-o", "--out", None])
def test_export_takes_its_file_as_o_out_or_positional(tmp_path, ckpt, flag):
    pytest.importorskip("onnx")
    target = tmp_path / "m.onnx"
    args = ["export", ckpt, *([flag, target] if flag else [target])]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert target.is_file() and target.stat().st_size > 0


def test_export_refuses_two_different_files_and_none(tmp_path, ckpt):
    both = invoke(["export", ckpt, tmp_path / "a.onnx", "-o", tmp_path / "b.onnx"])
    assert both.exit_code == 2 and "not both" in both.output
    none = invoke(["export", ckpt])
    assert none.exit_code == 2 and "give the ONNX file" in none.output
    assert not list(tmp_path.glob("*.onnx"))


@pytest.mark.parametrize("flag", ["-o", "--out", "--show-input"])
def test_predict_show_input_is_also_o_and_out(tmp_path, ckpt, flag):
    target = tmp_path / "seen.png"
    result = invoke(["predict", ckpt, CORPUS / "good" / "digit.png", flag, target])
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("flag", ["-o", "--out", "--plot"])
def test_evaluate_plot_is_also_o_and_out(tmp_path, ckpt, flag):
    pytest.importorskip("matplotlib")
    target = tmp_path / "eval.png"
    result = invoke(["evaluate", ckpt, "--device", "cpu", "--limit", "20", flag, target])
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_out_is_also_o(tmp_path):
    target = tmp_path / "run.h5"
    result = invoke(["train", "--epochs", "1", "--limit", "10", "--validation", "5", "--device", "cpu", "-o", target])
    assert result.exit_code == 0, result.output
    assert target.is_file() and (tmp_path / "run.best.h5").is_file()
