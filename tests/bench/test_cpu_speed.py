"""Timing regression guards for the CPU path (marker `bench`: excluded from the default run).

    pytest -m bench tests/bench

Each guard compares against a peer timed in the same run, never a bare time: the NumPy reference
ops (always there), and PyTorch's CPU build when it is installed (`pip install -e '.[bench]'`).
The bounds leave room for a noisy machine; benchmarks/RESULTS.md has the careful figures.
"""

from __future__ import annotations

import json
import pathlib
import statistics
import subprocess
import sys
import time

import numpy as np
import pytest

import dualnet as dn
from dualnet.backend import Device, get_device_object
from dualnet.ops.reference import ReferenceOps

pytestmark = pytest.mark.bench
ROOT = pathlib.Path(__file__).resolve().parents[2]


def _step_ms(ops, x, labels, repeats: int = 15) -> float:
    """Median ms of one lenet5 training step (forward, loss, backward, SGD update) with `ops`."""
    dev = Device("cpu", np, ops)  # a cpu device with the given op table
    model = dn.models.lenet5().to(dev)
    opt = dn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    crit = dn.losses.SoftmaxCrossEntropy(device=dev)
    times = []
    for i in range(repeats + 3):
        t = time.perf_counter()
        model.zero_grad()
        crit.forward(model(x), labels, sync=False)
        model.backward(crit.backward(), need_input_grad=False)
        opt.step()
        if i >= 3:  # warm-up steps allocate
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def test_cpu_ops_train_lenet5_at_least_twice_as_fast_as_the_numpy_reference():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(64, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, size=64).astype(np.int32)
    reference, fast = [], []
    for _ in range(3):  # alternate, so a noisy neighbour hits both
        reference.append(_step_ms(ReferenceOps(), x, labels))
        fast.append(_step_ms(get_device_object("cpu").ops, x, labels))
    ratio = statistics.median(reference) / statistics.median(fast)
    print(f"lenet5 step: ReferenceOps {statistics.median(reference):.2f} ms, CpuOps {statistics.median(fast):.2f} ms, "
          f"speed-up {ratio:.2f}x")
    assert ratio >= 2.0


def test_cpu_training_epoch_keeps_pace_with_pytorch(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "compare.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare_torch.py"), "--runs", "3",
                           "--limit", "12800", "--json", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    print(proc.stdout)
    summary = json.loads(out.read_text())
    # parity is <= 1.0 on a quiet machine (RESULTS.md); the guard catches regressions, not noise
    assert summary["epoch_ratio"] <= 1.3
    assert summary["inference_ratio"] >= 0.6
