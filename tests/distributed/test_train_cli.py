"""`mpiexec -n 2 dualnet train --distributed` as a user runs it: one checkpoint that `dualnet evaluate`
reads, a SIGTERM to one rank stopping both with one resumable checkpoint, a killed rank ending the job."""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest
from mpi_launch import launch, rank_pids, run

import dualnet as dn

# 1,792 training images: 28 steps of 64 per epoch, about a second per epoch on two ranks
ARGS = ["train", "--distributed", "--device", "cpu", "--limit", "2048", "--validation", "256", "--seed", "2"]


def _params(path: pathlib.Path) -> dict[str, np.ndarray]:
    return {name: dn.to_numpy(p.data) for name, p in dn.load(path).named_parameters()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, dualnet_executable: str) -> pathlib.Path:
    """An uninterrupted 3-epoch distributed run."""
    out = tmp_path_factory.mktemp("ref") / "run.h5"
    done = run([dualnet_executable, *ARGS, "--epochs", "3", "--out", str(out), "--json"])
    assert done.returncode == 0, done.stderr
    assert len([line for line in done.stdout.splitlines() if '"event": "epoch"' in line]) == 3  # rank 0 only
    return out


def test_distributed_checkpoint_records_the_job_and_evaluates(reference: pathlib.Path,
                                                              dualnet_executable: str) -> None:
    with h5py.File(reference) as f:
        meta = json.loads(f.attrs["metadata"])
    assert meta["distributed"] == {"world_size": 2, "backend": "mpi", "reduction": "sum"}
    done = subprocess.run([dualnet_executable, "evaluate", str(reference), "--limit", "256"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "accuracy" in done.stdout.lower()


def test_sigterm_to_one_rank_stops_both_with_one_resumable_checkpoint(reference: pathlib.Path, tmp_path: pathlib.Path,
                                                                      dualnet_executable: str) -> None:
    out = tmp_path / "run.h5"
    job = launch([dualnet_executable, *ARGS, "--epochs", "3", "--out", str(out)], stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE)
    pids = rank_pids(job)
    # the first progress line of rank 0 says training has started: stop rank 1 alone then
    assert job.stderr is not None
    # (a progress bar line, not the recipe line printed before the signal handlers exist)
    for line in job.stderr:
        if re.match(r"\s*epoch \d+/\d+ \[", line):
            break
    os.kill(pids[1], signal.SIGTERM)
    _, err = job.communicate(timeout=120)
    assert job.returncode == 130, err
    assert err.count("saved a resumable checkpoint") == 1, err
    assert f"resume with: mpiexec -n 2 dualnet train --distributed --resume {out}" in err
    assert out.exists() and not (tmp_path / "run.h5.tmp").exists()
    resumed = run([dualnet_executable, "train", "--distributed", "--resume", str(out), "--json"])
    assert resumed.returncode == 0, resumed.stderr
    final, ref = _params(out), _params(reference)
    for k in ref:
        assert np.array_equal(final[k], ref[k]), f"{k}: the resumed run differs from the uninterrupted one"


def test_sigkill_of_one_rank_ends_the_job_nonzero_within_30_s(tmp_path: pathlib.Path,
                                                              dualnet_executable: str) -> None:
    job = launch([dualnet_executable, *ARGS, "--epochs", "20", "--out", str(tmp_path / "run.h5"), "--json"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pids = rank_pids(job)
    time.sleep(2.0)  # into training: rank 0 then waits in a collective for the rank that dies
    os.kill(pids[1], signal.SIGKILL)
    started = time.monotonic()
    try:
        rc = job.wait(timeout=30)
    except subprocess.TimeoutExpired:
        job.kill()
        pytest.fail("the job still ran 30 s after one rank was killed")
    assert rc != 0
    assert time.monotonic() - started < 30


def test_batch_size_not_divisible_by_world_size_is_refused_in_one_line(tmp_path: pathlib.Path,
                                                                       dualnet_executable: str) -> None:
    done = run([dualnet_executable, *ARGS, "--epochs", "1", "--batch-size", "63",
                "--out", str(tmp_path / "run.h5")])
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("dualnet: error:")]
    assert len(lines) == 1 and "not divisible by the world size 2" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_reduction_without_distributed_is_a_usage_error(tmp_path: pathlib.Path, dualnet_executable: str) -> None:
    done = subprocess.run([dualnet_executable, "train", "--reduction", "ordered", "--epochs", "1", "--limit", "256",
                           "--out", str(tmp_path / "run.h5")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "--reduction applies to --distributed only" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run.h5").exists()
