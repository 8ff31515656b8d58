"""The writers of the command line, each as an argv with its target left open, and the special
files they must refuse: shared by tests/reliability/test_output_refusals.py,
tests/reliability/test_output_rule.py and tests/outputs/test_guard.py."""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import stat
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
QUICK = ["--epochs", "1", "--limit", "10", "--validation", "5", "--device", "cpu"]

# writer -> (argv with {T} for the target, {Tbase}, {tmp}, {ckpt}, {cnn}, {data}, {digit}, {photos}; the
# optional library it needs, or None)
WRITERS = {
    "checkpoint": (["train", *QUICK, "--data", "{data}", "--out", "{T}"], None),
    "best-checkpoint": (["train", *QUICK, "--data", "{data}", "--out", "{Tbase}.h5"], None),
    "early-stop-copy": (["train", *QUICK, "--data", "{data}", "--early-stop", "1", "--out", "{Tbase}.h5"], None),
    "csv-log": (["train", *QUICK, "--data", "{data}", "--out", "{tmp}/run.h5", "--log-csv", "{T}"], None),
    "tensorboard": (["train", *QUICK, "--data", "{data}", "--out", "{tmp}/run.h5", "--tensorboard", "{T}"],
                    "tensorboardX"),
    "onnx": (["export", "{ckpt}", "{T}"], "onnx"),
    "evaluate-plot": (["evaluate", "{ckpt}", "--data", "{data}", "--split", "train", "--limit", "10", "--device", "cpu",
                       "--plot", "{T}"], "matplotlib"),
    "plot": (["plot", "{ckpt}", "-o", "{T}"], "matplotlib"),
    "filters": (["filters", "{cnn}", "-o", "{T}"], "matplotlib"),
    "featuremaps": (["featuremaps", "{cnn}", "{digit}", "-o", "{T}"], "matplotlib"),
    "show-input": (["predict", "{ckpt}", "{digit}", "--show-input", "{T}"], None),
    "data-convert": (["data", "convert", "{photos}", "{T}", "--image-size", "8,8", "--processes", "1"], None),
}
# where the target of each writer lies when the writer derives it from --out
DERIVED = {"best-checkpoint": ".best.h5", "early-stop-copy": ".earlystop.h5"}
# the writers whose target is a file (TensorBoard's is a folder)
FILE_WRITERS = [w for w in WRITERS if w != "tensorboard"]


def make_special(path: pathlib.Path, kind: str) -> pathlib.Path:
    """Make `path` a target of `kind` that is not a regular file: directory, fifo, socket or (root
    only; skipped otherwise) a character device made like /dev/null."""
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()
    else:
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root")
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    return path


def input_files(tmp_path: pathlib.Path) -> dict[str, pathlib.Path]:
    """Copies of a tiny checkpoint, an HDF5 data file, a digit picture, a small convolutional
    checkpoint (for the pictures of filters and feature maps) and a folder of photos."""
    sys.path.insert(0, str(HERE.parent / "data"))
    from photo_folders import make_folder

    import dualnet as dn

    return {"ckpt": pathlib.Path(shutil.copy(CORPUS / "good" / "tiny.h5", tmp_path / "tiny.h5")),
            "data": pathlib.Path(shutil.copy(CORPUS / "data" / "h5-no-test-group.h5", tmp_path / "data.h5")),
            "digit": pathlib.Path(shutil.copy(CORPUS / "good" / "digit.png", tmp_path / "digit.png")),
            "cnn": dn.save(dn.models.digits_cnn(), tmp_path / "cnn.h5"),
            "photos": make_folder(tmp_path / "photos", per_class=3, classes=("a", "b"))}


def run_writer(writer: str, target: pathlib.Path, tmp: pathlib.Path, files: dict, capsys,
               extra: tuple[str, ...] = ()) -> tuple[int, str, str]:
    """Run `writer` onto `target` through dualnet's main: (exit code, stdout, stderr)."""
    from dualnet_cli.main import main

    argv, needs = WRITERS[writer]
    if needs:
        pytest.importorskip(needs)
    base = str(target)[: -len(DERIVED[writer])] if writer in DERIVED else str(target)
    places = dict(T=str(target), Tbase=base, tmp=str(tmp), **{k: str(v) for k, v in files.items()})
    with pytest.raises(SystemExit) as info:
        main([a.format(**places) for a in argv] + list(extra))
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err
