"""benchmarks/distributed_bench.py runs in its quickest form, so it cannot rot unnoticed."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

from mpi_launch import mpiexec, pinned_env

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_distributed_bench_reports_scaling_and_allreduce_share(tmp_path: pathlib.Path) -> None:
    mpiexec()  # skips without MPI
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "distributed_bench.py"), "--rounds", "1",
                           "--steps", "4", "--reduce-repeats", "5", "--threads", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, env=pinned_env())
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    assert r["elements"] >= 61_706  # LeNet-5's parameters, padded to 64-byte segments
    assert r["step_ms_1_rank"] > 0 and r["step_ms_2_ranks"] > 0
    assert r["scaling_efficiency"] == r["speedup"] / 2
    assert set(r["allreduce_us"]) == {"sum", "ordered"}
    assert "scaling efficiency" in proc.stdout and "of the 2-rank step" in proc.stdout
