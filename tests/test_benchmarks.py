"""The benchmark scripts run (in their quickest form) so they cannot rot unnoticed."""

from __future__ import annotations

import pathlib
import subprocess
import sys

from benchmark_runs import benchmark_json, run_benchmark

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_a_lenet5_fit_step_on_the_gpu_path_issues_at_most_40_device_operations_and_rare_syncs(tmp_path):
    """The operation-count guard of the host-overhead benchmark (counts, not times): the whole
    "gpu" code path over the stand-in cupy that counts every kernel, cuBLAS call, memset, copy
    and host sync."""
    r, _ = benchmark_json("gpu_host_overhead.py", tmp_path / "host.json", "--steps", 50, "--rounds", 1, "--no-peer")
    assert r["device_ops_per_step"] <= 40, r["ops_per_step_by_name"]
    by_name = r["ops_per_step_by_name"]
    # one optimizer kernel, one gradient fill, one batch gather and one tally per step
    assert by_name["kernel:dualnet:sgd_update"] == 1 and by_name["memset:fill"] == 1
    assert by_name["kernel:dualnet:gather_batch"] == 1 and by_name["kernel:dualnet:step_stats"] == 1
    assert by_name["kernel:dualnet:conv_relu_maxpool_forward"] == 2
    assert by_name.get("copy:host_to_device", 0) == 0  # the epoch order goes up once per epoch
    assert r["syncs_outside_progress_per_step"] <= 1 / 50, r["syncs_outside_progress"]


def test_gpu_bench_smoke_on_emu_times_a_real_fit(tmp_path):
    r, proc = benchmark_json("gpu_bench.py", tmp_path / "bench.json", "--device", "emu", "--quick", flag="--out")
    row = r["batches"]["64"]
    assert row["dualnet_ms_per_step"] > 0 and row["dualnet_s_per_epoch"] > 0 and row["steps_per_fit"] == 4
    assert "dualnet" in proc.stdout and "peer: none on device emu" in proc.stdout


def test_step_time_prints_a_ratio_against_its_peer():
    proc = run_benchmark("step_time.py", "--repeats", 2)
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


def test_the_stream_memory_benchmark_runs_and_reports_the_streamed_peak(tmp_path):
    r, proc = benchmark_json("stream_memory.py", tmp_path / "stream.json", "--gigabytes", 0.002, "--peer-rows", 300,
                             "--limit", 200, "--dir", tmp_path)
    assert r["images"] == 651 and r["trained_images"] == 200 and r["stream_peak_rss_bytes"] > 0
    assert "peak resident memory: streamed" in proc.stdout


def test_the_folder_conversion_benchmark_reports_images_per_second(tmp_path):
    r, _ = benchmark_json("folder_convert.py", tmp_path / "convert.json", "--images", 8, "--runs", 1, "--size", "40,30")
    assert set(r["runs"]) == {"jpeg", "png"}
    assert all(r["runs"][fmt][p]["median"] > 0 for fmt in ("jpeg", "png") for p in ("1", "2"))


def test_resnet_steps_trains_a_few_dualnet_steps():
    run_benchmark("resnet_steps.py", "dualnet", "resnet8", 2, 1)
