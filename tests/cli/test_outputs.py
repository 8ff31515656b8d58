"""No command replaces one of its own inputs, and no command silently replaces an earlier output."""

from __future__ import annotations

import os
import pathlib
import shutil
import sys

import pytest
from click.testing import CliRunner

from dualnet_cli.main import cli

CORPUS = pathlib.Path(__file__).resolve().parents[1] / "reliability" / "corpus"
sys.path.insert(0, str(CORPUS.parent))
from make_corpus import IMAGES, LABELS, gz, idx_bytes  # noqa: E402

QUICK = ["--epochs", "1", "--limit", "10", "--validation", "5", "--device", "cpu"]


def invoke(args, cwd=None):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def files(tmp_path) -> dict[str, pathlib.Path]:
    ckpt = shutil.copy(CORPUS / "good" / "tiny.h5", tmp_path / "tiny.h5")
    data = shutil.copy(CORPUS / "data" / "h5-no-test-group.h5", tmp_path / "data.h5")
    digit = shutil.copy(CORPUS / "good" / "digit.png", tmp_path / "digit.png")
    idx = tmp_path / "idx"
    idx.mkdir()
    for part in ("train", "t10k"):
        (idx / f"{part}-images-idx3-ubyte.gz").write_bytes(gz(idx_bytes(IMAGES)))
        (idx / f"{part}-labels-idx1-ubyte.gz").write_bytes(gz(idx_bytes(LABELS)))
    return {"ckpt": pathlib.Path(ckpt), "data": pathlib.Path(data), "digit": pathlib.Path(digit), "idx": idx}


def snapshot(folder: pathlib.Path) -> dict:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def refused(result, *words) -> None:
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    assert "would replace" in line or "already exists" in line, line
    for word in words:
        assert word in line, line


@pytest.mark.parametrize("case", ["out-is-data", "out-inside-idx", "out-hard-link-to-data", "out-symlink-to-data",
                                  "best-is-data"])
def test_train_never_replaces_its_data(tmp_path, files, case):
    data, out = files["data"], None
    if case == "out-is-data":
        out = data
    elif case == "out-inside-idx":
        data, out = files["idx"], files["idx"] / "train-images-idx3-ubyte.gz"
    elif case == "out-hard-link-to-data":
        out = tmp_path / "link.h5"
        os.link(data, out)
    elif case == "out-symlink-to-data":
        out = tmp_path / "sym.h5"
        out.symlink_to(data)
    else:  # <out>.best.h5 is the data
        shutil.copy(data, tmp_path / "x.best.h5")
        data, out = tmp_path / "x.best.h5", tmp_path / "x.h5"
    before = snapshot(tmp_path)
    refused(invoke(["train", "--data", data, "--out", out, "--overwrite", *QUICK]), "--out")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["evaluate", "filters", "plot", "featuremaps", "featuremaps-image"])
def test_picture_outputs_never_replace_the_checkpoint_or_image(tmp_path, files, command):
    pytest.importorskip("matplotlib")
    ckpt, digit = files["ckpt"], files["digit"]
    args = {"evaluate": ["evaluate", ckpt, "--device", "cpu", "--limit", "10", "--plot", ckpt],
            "filters": ["filters", ckpt, "--layer", "1", "-o", ckpt],
            "plot": ["plot", ckpt, "-o", ckpt],
            "featuremaps": ["featuremaps", ckpt, digit, "-o", ckpt],
            "featuremaps-image": ["featuremaps", ckpt, digit, "-o", digit]}[command]
    before = snapshot(tmp_path)
    refused(invoke(args))
    assert snapshot(tmp_path) == before


def test_train_never_replaces_a_previous_run_unless_told(tmp_path, monkeypatch):
    # issue 20.8: a default checkpoint that exists gets a free name, as the pictures do (it used to be refused)
    monkeypatch.chdir(tmp_path)
    first = invoke(["train", *QUICK])
    assert first.exit_code == 0, first.output
    written = (tmp_path / "runs" / "lenet5.h5").read_bytes()
    second = invoke(["train", *QUICK, "--seed", "1"])
    assert second.exit_code == 0 and "checkpoints: last runs/lenet5-2.h5, best runs/lenet5-2.best.h5" in second.output
    assert (tmp_path / "runs" / "lenet5.h5").read_bytes() == written
    third = invoke(["train", *QUICK, "--seed", "1", "--overwrite"])
    assert third.exit_code == 0 and "checkpoints: last runs/lenet5.h5" in third.output
    assert (tmp_path / "runs" / "lenet5.h5").read_bytes() != written


def test_picture_defaults_never_replace_an_earlier_picture(tmp_path, files):
    pytest.importorskip("matplotlib")
    train = invoke(["train", *QUICK, "--out", tmp_path / "run.h5", "--plot"])
    assert train.exit_code == 0, train.output
    curves = tmp_path / "run.curves.png"
    made = curves.read_bytes()
    result = invoke(["plot", tmp_path / "run.h5"])
    assert result.exit_code == 0 and result.output.strip() == f"wrote: {tmp_path / 'run.curves-2.png'}"
    assert curves.read_bytes() == made
    ckpt = tmp_path / "run.h5"
    result = invoke(["featuremaps", ckpt, files["digit"]])
    again = invoke(["featuremaps", ckpt, "--index", "0"])
    assert result.output.strip() == f"wrote: {tmp_path / 'run.featuremaps.png'}"
    assert again.output.strip() == f"wrote: {tmp_path / 'run.featuremaps-2.png'}"
    replaced = invoke(["featuremaps", ckpt, "--index", "1", "--overwrite"])
    assert replaced.output.strip() == f"wrote: {tmp_path / 'run.featuremaps.png'}"
