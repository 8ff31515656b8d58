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


def test_compare_torch_explains_how_to_install_pytorch_when_it_is_missing():
    """CI has no PyTorch: the comparison must say what to install, not crash."""
    script = str(ROOT / "benchmarks" / "compare_torch.py")
    code = ("import sys, runpy; sys.modules['torch'] = None; "
            f"sys.argv = ['compare_torch.py', '--runs', '1']; runpy.run_path({script!r}, run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "pip install torch==2.13.0" in proc.stderr


def test_compare_resnet_explains_how_to_install_pytorch_when_it_is_missing():
    code = ("import sys, runpy; sys.modules['torch'] = None; "
            f"sys.argv = ['compare_resnet.py', '--runs', '1']; "
            f"runpy.run_path({str(ROOT / 'benchmarks' / 'compare_resnet.py')!r}, run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "pip install torch==2.13.0" in proc.stderr
