"""The kernel cost report (benchmarks/gpu_kernel_report.py) and its model (benchmarks/kernel_cost.py):
the model's arithmetic on hand-made launches, and the report on traced LeNet-5 and resnet20 steps (no GPU)."""

from __future__ import annotations

import pathlib
import sys

import pytest
from benchmark_runs import benchmark_json

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from kernel_cost import GPUS, Launch, cost, gemm_launch, waves  # noqa: E402

H100 = GPUS["h100-sxm"]


def test_a_full_gpu_streams_at_the_bandwidth_peak_and_a_few_serial_threads_do_not():
    """Little's law: 64 MB over a million threads is memory-bound near 3.35 TB/s; the same bytes
    walked by 2,048 threads one row each are latency-bound and at least 10x slower."""
    wide = cost(H100, Launch("stream", 4096, 256, 0, 64 * 2**20, 0.0, 1))
    narrow = cost(H100, Launch("rows", 8, 256, 0, 64 * 2**20, 0.0, 8192))
    assert wide.bound == "memory"
    assert wide.time_us == pytest.approx(H100.launch_us + 64 * 2**20 / H100.bandwidth * 1e6)
    assert narrow.bound == "latency (few threads)" and narrow.time_us > 10 * wide.time_us


def test_a_tiny_kernel_costs_its_launch_and_waves_count_resident_blocks():
    tiny = cost(H100, Launch("tiny", 1, 32, 0, 128, 10.0, 1))
    assert tiny.bound == "launch" and tiny.time_us < 1.1 * H100.launch_us
    # 8 blocks of 256 threads fit per SM: 132 * 8 blocks are one wave
    assert waves(H100, Launch("k", 132 * 8, 256, 0, 0, 0.0, 1)) == pytest.approx(1.0)
    # 100 KB of shared memory per block: 2 blocks per SM
    assert waves(H100, Launch("k", 132 * 2, 256, 100 * 1024, 0, 0.0, 1)) == pytest.approx(1.0)


def test_a_large_product_is_flop_bound_and_tf32_is_faster():
    m, n, k = 128 * 132, 128 * 8, 4096  # 8 full waves of 128 x 128 tiles
    fp32 = cost(H100, gemm_launch("g", m, n, k, 4, "fp32"))
    tf32 = cost(H100, gemm_launch("g", m, n, k, 4, "tf32"))
    assert fp32.bound == "flops"
    assert fp32.time_us == pytest.approx(H100.launch_us + 2 * m * n * k / (H100.fp32 * H100.gemm_efficiency) * 1e6,
                                         rel=1e-6)
    assert tf32.time_us < fp32.time_us / 5


def test_the_report_costs_every_launch_of_a_lenet5_step_beside_pytorch(tmp_path):
    r, proc = benchmark_json("gpu_kernel_report.py", tmp_path / "report.json", "--model", "lenet5", "--batch-size", 64)
    assert r["estimate"] is True and r["gpu"] == "H100 SXM"
    assert r["dualnet_launches"] == sum(row["launches"] for row in r["dualnet_by_kernel"])
    assert r["ratio"] == pytest.approx(r["dualnet_ms"] / r["torch_ms"])
    text = proc.stdout
    assert "ESTIMATES" in text and "grid x block" in text and "waves" in text and "serial" in text
    launch_rows = [line for line in text.splitlines() if line[:4].strip().isdigit()]
    assert len(launch_rows) == r["dualnet_launches"]
    assert any("conv_relu_maxpool_forward" in line for line in launch_rows)
    assert "cudnn conv forward" in text and "multi-tensor SGD" in text


def test_a_launch_of_few_blocks_gets_only_its_sms_ports():
    """16 blocks (one per channel of a 16-channel batch norm) move their bytes through 16 SMs:
    64 B/clock each, not the GPU's 3.35 TB/s; the same launch over 1,024 blocks streams at the peak.
    Wide loads in flight (4 x 16 B per thread) keep 16 blocks of 1,024 threads off the latency bound."""
    nbytes, l2 = 16 * 2**20, 8 * 2**20
    few = cost(H100, Launch("bn", 16, 1024, 0, nbytes, 0.0, 31, l2_bytes=l2, ilp=4, word=16))
    assert few.bound == "SM ports (few blocks)"
    assert few.time_us == pytest.approx(H100.launch_us + (nbytes + l2) / (16 * H100.sm_bandwidth) * 1e6)
    full = cost(H100, Launch("bn", 1024, 1024, 0, nbytes, 0.0, 31, l2_bytes=l2, ilp=4, word=16))
    assert full.bound == "memory" and full.time_us < few.time_us / 2
    narrow = cost(H100, Launch("bn", 16, 1024, 0, nbytes, 0.0, 31, l2_bytes=l2))  # 4 x 4 B in flight
    assert narrow.bound == "latency (few threads)" and narrow.time_us > few.time_us


def test_the_resnet20_report_meets_issue_21s_targets(tmp_path):
    """resnet20, batch 128: at most 150 launches (exactly 139 today) and at most 1.5x PyTorch's
    estimate; batch norm one launch each way per layer (21 layers)."""
    r, _ = benchmark_json("gpu_kernel_report.py", tmp_path / "report.json", "--model", "resnet20", "--batch-size", 128,
                          "--summary")
    by_kernel = {row["kernel"]: row["launches"] for row in r["dualnet_by_kernel"]}
    assert by_kernel["bn_forward"] == 21 and by_kernel["bn_backward"] == 21, by_kernel
    assert not any(k.startswith("bn_") and k not in ("bn_forward", "bn_backward") for k in by_kernel), by_kernel
    assert r["dualnet_launches"] == 139, by_kernel
    assert r["ratio"] <= 1.5, r["ratio"]
