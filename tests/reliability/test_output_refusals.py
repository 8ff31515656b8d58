"""Every output of every command, refused for each way it could destroy something (issue 20.1):
it is an input (the same file, a hard or symbolic link to it, a path inside an input folder),
another output of the same command, or a target that is not a regular file (directory, FIFO,
socket, device). Each refusal is one line, before anything is written: the input, the FIFO and the
device are left as they were. On the main of before the guarded writer, ONNX export, the CSV log
and the TensorBoard folder replaced FIFOs, devices and inputs."""

from __future__ import annotations

import os
import pathlib
import shutil
import sys

import pytest

from dualnet_cli.main import main

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_corpus import IMAGES, LABELS, gz, idx_bytes  # noqa: E402
from writers import CORPUS, DERIVED, QUICK, WRITERS, input_files, make_special, run_writer  # noqa: E402

KINDS = ["directory", "fifo", "socket", "device"]
INPUTS = ["input", "hard-link", "symbolic-link"]


def _make(path: pathlib.Path, kind: str) -> None:
    make_special(path, kind)


def _run(writer: str, target: pathlib.Path, tmp: pathlib.Path, files: dict, capsys) -> tuple[int, str, str]:
    return run_writer(writer, target, tmp, files, capsys)


@pytest.fixture
def files(tmp_path) -> dict[str, pathlib.Path]:
    return input_files(tmp_path)


def _refused(code: int, out: str, err: str, target: pathlib.Path) -> None:
    lines = err.strip().splitlines()
    assert code in (1, 2) and len(lines) == 1 and "Traceback" not in err, f"exit {code}:\n{err}"
    assert lines[0].startswith("dualnet: error: ") and target.name in lines[0], lines[0]
    assert "wrote" not in out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_target_that_is_not_a_regular_file_is_refused(tmp_path, files, capsys, monkeypatch, writer, kind):
    monkeypatch.chdir(tmp_path)
    if writer == "tensorboard" and kind == "directory":
        kind = "file"  # a TensorBoard folder is a directory: a regular file is what it must not be
    target = tmp_path / f"target{DERIVED.get(writer, '.out')}"
    if kind == "file":
        target.write_bytes(b"keep")
    else:
        _make(target, kind)
    mode = os.lstat(target).st_mode
    code, out, err = _run(writer, target, tmp_path, files, capsys)
    _refused(code, out, err, target)
    assert os.lstat(target).st_mode == mode
    assert not any(".tmp-" in p.name for p in tmp_path.iterdir())


@pytest.mark.parametrize("how", INPUTS)
@pytest.mark.parametrize("writer", list(WRITERS))
def test_an_input_is_never_replaced(tmp_path, files, capsys, monkeypatch, writer, how):
    monkeypatch.chdir(tmp_path)
    source = files["ckpt"] if writer in ("onnx", "plot", "show-input", "evaluate-plot") else files["data"]
    if writer in ("filters", "featuremaps"):
        source = files["cnn"]
    if writer == "data-convert":  # its input is a folder of photos in class subfolders
        source = files["photos"] / "a" / "a_00.jpg"  # a hard link to it: found by inode at any depth
    if writer in DERIVED:  # the derived name is itself the data file
        target = tmp_path / f"precious{DERIVED[writer]}"
        shutil.copy(files["data"], target)
        files = {**files, "data": target}
        source = target
        how = "input"
    elif how == "input":
        target = source
    elif how == "hard-link":
        target = tmp_path / "hard.link"
        os.link(source, target)
    else:
        target = tmp_path / "sym.link"
        target.symlink_to(source)
    before = source.read_bytes()
    code, out, err = _run(writer, target, tmp_path, files, capsys)
    _refused(code, out, err, target)
    # a TensorBoard folder named like a file is refused by the option itself (click: "is a file")
    assert "would replace" in err or (writer == "tensorboard" and "is a file" in err), err
    assert source.read_bytes() == before


@pytest.mark.parametrize("writer", ["checkpoint", "csv-log", "tensorboard", "evaluate-plot"])
def test_nothing_is_written_inside_an_input_folder(tmp_path, capsys, monkeypatch, writer):
    monkeypatch.chdir(tmp_path)
    idx = tmp_path / "idx"
    idx.mkdir()
    for part in ("train", "t10k"):
        (idx / f"{part}-images-idx3-ubyte.gz").write_bytes(gz(idx_bytes(IMAGES)))
        (idx / f"{part}-labels-idx1-ubyte.gz").write_bytes(gz(idx_bytes(LABELS)))
    before = {p.name: p.read_bytes() for p in idx.iterdir()}
    ckpt = pathlib.Path(shutil.copy(CORPUS / "good" / "tiny.h5", tmp_path / "tiny.h5"))
    files = {"ckpt": ckpt, "data": idx, "digit": CORPUS / "good" / "digit.png"}
    code, out, err = _run(writer, idx / "new-output", tmp_path, files, capsys)
    _refused(code, out, err, idx / "new-output")
    assert "inside the input folder" in err
    assert {p.name: p.read_bytes() for p in idx.iterdir()} == before


@pytest.mark.parametrize("second", ["csv-log", "tensorboard", "early-stop-copy"])
def test_two_outputs_of_train_never_share_a_path(tmp_path, files, capsys, monkeypatch, second):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run.h5"
    option = {"csv-log": ["--log-csv", str(out)], "tensorboard": ["--tensorboard", str(out)],
              "early-stop-copy": ["--early-stop", "1", "--log-csv", str(tmp_path / "run.earlystop.h5")]}[second]
    with pytest.raises(SystemExit) as info:
        main(["train", *QUICK, "--data", str(files["data"]), "--out", str(out), *option])
    err = capsys.readouterr().err
    assert info.value.code in (1, 2) and len(err.strip().splitlines()) == 1, err
    assert "also the" in err, err
    assert not out.exists()
