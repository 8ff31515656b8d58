"""Ranks that agree (issue 20): a distributed run whose ranks were given another option or other data
is refused on every rank before any step, naming the option or the files and the ranks; ranks that
each read their own copy of the same data (a multi-host launch) train. Under `mpiexec -n 2` with one
command line per rank (MPMD), as a user would launch it by mistake."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import h5py
import numpy as np
import pytest
from mpi_launch import mpiexec, pinned_env

import dualnet as dn
from dualnet.distributed.agreement import _differences, data_identity, run_fingerprint

COMMON = ["train", "--distributed", "--device", "cpu", "--epochs", "1", "--validation", "8", "--batch-size", "16",
          "--json"]


def write_data(path: pathlib.Path, shift: int = 0) -> pathlib.Path:
    """72 training and 8 test images 28x28 with labels (i + shift) % 10."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (72, 28, 28), dtype=np.uint8)
    labels = (np.arange(72) + shift) % 10
    with h5py.File(path, "w") as f:
        f["train/images"], f["train/labels"] = images, labels
        f["test/images"], f["test/labels"] = images[:8], labels[:8]
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    folder = tmp_path_factory.mktemp("data")
    a = write_data(folder / "a.h5")
    copy = folder / "host2"
    copy.mkdir()
    shutil.copy(a, copy / "a-copy.h5")
    return {"a": a, "copy": copy / "a-copy.h5", "other": write_data(folder / "other.h5", shift=1)}


def launch_two(rank0: list[str], rank1: list[str], cwd: pathlib.Path, exe: str) -> subprocess.CompletedProcess:
    """rank 0 runs `dualnet *rank0`, rank 1 `dualnet *rank1`, in one MPI job."""
    cmd = [mpiexec(), "-n", "1", exe, *rank0, ":", "-n", "1", exe, *rank1]
    return subprocess.run(cmd, cwd=cwd, env=pinned_env(), capture_output=True, text=True, timeout=120)


def test_a_rank_given_another_lr_is_refused_naming_the_option_and_the_ranks(data, tmp_path, dualnet_executable):
    args = [*COMMON, "--data", str(data["a"]), "--out", str(tmp_path / "r.h5")]
    done = launch_two([*args, "--lr", "0.01"], [*args, "--lr", "0.02"], tmp_path, dualnet_executable)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == ("dualnet: error: the ranks disagree: --lr differs (rank 0: 0.01, rank 1: 0.02); "
                                   "every rank must run the same command on the same data (a copy of it on each "
                                   "host is fine)")
    assert '"event": "epoch"' not in done.stdout and not (tmp_path / "r.h5").exists()


def test_a_rank_given_other_data_of_the_same_size_is_refused_naming_both_files(data, tmp_path, dualnet_executable):
    done = launch_two([*COMMON, "--data", str(data["a"]), "--out", str(tmp_path / "r.h5")],
                      [*COMMON, "--data", str(data["other"]), "--out", str(tmp_path / "r.h5")], tmp_path,
                      dualnet_executable)
    assert done.returncode == 1, done.stderr
    line = done.stderr.strip()
    assert line.startswith(f"dualnet: error: the ranks disagree: --data differs (rank 0's {data['a']}, rank 1's "
                           f"{data['other']} hold different data; train: the label counts"), line
    assert not (tmp_path / "r.h5").exists()


def test_ranks_reading_their_own_copies_of_the_same_data_train(data, tmp_path, dualnet_executable):
    out = tmp_path / "r.h5"
    done = launch_two([*COMMON, "--data", str(data["a"]), "--out", str(out)],
                      [*COMMON, "--data", str(data["copy"]), "--out", str(out)], tmp_path, dualnet_executable)
    assert done.returncode == 0, done.stderr
    assert '"event": "done"' in done.stdout and out.exists()


def test_a_data_identity_is_independent_of_the_path_and_of_streaming(data):
    a, copy, other = (dn.data.load(data[k], "train", validation=8) for k in ("a", "copy", "other"))
    streamed = dn.data.load(data["copy"], "train", validation=8, stream=True)
    try:
        assert data_identity(a) == data_identity(copy) == data_identity(streamed)
    finally:
        streamed.close()
    assert data_identity(a)["labels_sha256"] != data_identity(other)["labels_sha256"]
    assert data_identity(None) is None


def test_differences_name_each_option_and_each_split_that_differs(data):
    a = dn.data.load(data["a"], "train", validation=8)
    b = dn.data.load(data["a"], "train", validation=8, limit=32)
    config = dn.RunConfig(data=str(data["a"]), lr=0.1, seed=1).to_dict()
    mine = run_fingerprint(config, {"train": a, "test": None}, {"reduction": "sum"})
    theirs = run_fingerprint({**config, "data": "elsewhere.h5", "seed": 2}, {"train": b, "test": None},
                             {"reduction": "ordered"})
    assert _differences([mine, mine]) == []
    assert _differences([mine, {**mine, "source": "elsewhere.h5"}]) == []  # another path, the same data
    assert _differences([mine, theirs]) == [
        "--seed differs (rank 0: 1, rank 1: 2)", "--reduction differs (rank 0: sum, rank 1: ordered)",
        f"--data differs (rank 0's {data['a']}, rank 1's elsewhere.h5 hold different data; train: the number of "
        "images differ)"]


def test_a_refusal_on_one_rank_ends_the_job_naming_the_rank_instead_of_hanging(data, tmp_path, dualnet_executable):
    missing = tmp_path / "missing.h5"
    done = launch_two([*COMMON, "--data", str(data["a"]), "--out", str(tmp_path / "r.h5")],
                      [*COMMON, "--data", str(missing), "--out", str(tmp_path / "r.h5")], tmp_path, dualnet_executable)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (f"dualnet: error: rank 1: {missing}: no such file or directory; give 'mnist', a "
                                   "directory of IDX files or an .h5/.hdf5 file")
