"""Stops are decisions every rank takes at the same step: divergence, a callback's request on one
rank, and an error on one rank (which aborts the job instead of leaving the other blocked)."""

from __future__ import annotations

import json
import pathlib
import sys

from mpi_launch import HERE, run


def _stop_job(out: pathlib.Path, mode: str, timeout: float = 120):
    return run([sys.executable, str(HERE / "stop_worker.py"), str(out), mode], n=2, timeout=timeout)


def test_divergence_stops_every_rank_at_the_same_step(tmp_path: pathlib.Path) -> None:
    done = _stop_job(tmp_path, "diverge")
    assert done.returncode == 0, done.stderr
    messages = [(tmp_path / f"diverge.rank{r}.txt").read_text() for r in range(2)]
    assert "training diverged" in messages[0]
    assert messages[0] == messages[1]  # the same step, the same parameter, named the same way


def test_a_stop_requested_on_one_rank_stops_both_after_that_epoch(tmp_path: pathlib.Path) -> None:
    done = _stop_job(tmp_path, "stop")
    assert done.returncode == 0, done.stderr
    histories = [json.loads((tmp_path / f"stop.rank{r}.json").read_text()) for r in range(2)]
    assert [len(h) for h in histories] == [1, 1]
    assert histories[0] == [{**histories[1][0], "seconds": histories[0][0]["seconds"],
                             "images_per_s": histories[0][0]["images_per_s"]}]


def test_an_error_on_one_rank_aborts_the_job_instead_of_hanging(tmp_path: pathlib.Path) -> None:
    done = _stop_job(tmp_path, "error", timeout=60)
    assert done.returncode != 0
    assert "rank 1 of 2: RuntimeError: a failure on rank 1 alone; aborting the job" in done.stderr
    assert not list(tmp_path.glob("error.rank*.json"))
