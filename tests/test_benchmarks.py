"""The benchmark scripts run (in their quickest form) so they cannot rot unnoticed."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_gpu_bench_smoke_on_emu_counts_kernel_launches(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py"), "--device", "emu", "--quick",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(out.read_text())["batches"]["64"]
    # conv1, conv2: im2col; 5 bias+act; 2 pools; loss fwd/bwd; 4 relu bwd; 2 pool bwd; 2 col2im; 10 sgd
    assert row["launches"]["im2col"] == 2 and row["launches"]["sgd_update"] == 10
    assert row["kernel_launches_per_step"] == 29


def test_step_time_prints_a_ratio_against_its_peer():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "step_time.py"), "--repeats", "2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "dualnet / gemm floor =" in proc.stdout
