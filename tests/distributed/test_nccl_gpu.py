"""The nccl backend for real: one rank per GPU (two where the machine has two), NCCL from
nvidia-nccl-cu12, the same checks as the CPU job (test_parallel.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mpi_launch import run, worker

pytestmark = pytest.mark.gpu


def test_nccl_ranks_identical_and_close_to_one_gpu(tmp_path) -> None:
    cupy = pytest.importorskip("cupy")
    nccl = pytest.importorskip("cupy.cuda.nccl", reason="no NCCL binding (pip install nvidia-nccl-cu12)")
    if not getattr(nccl, "available", True):
        pytest.skip("CuPy found no NCCL library (pip install nvidia-nccl-cu12)")
    n = min(2, cupy.cuda.runtime.getDeviceCount())
    done = run(worker(str(tmp_path), "gpu"), n=n, timeout=300)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    jobs = [json.loads((tmp_path / f"job.rank{r}.json").read_text()) for r in range(n)]
    assert [j["device"] for j in jobs] == [f"gpu:{r}" for r in range(n)]
    assert {j["backend"] for j in jobs} == {"nccl"}
    single = np.load(tmp_path / "single.rank0.npz")
    for name in ("sum", "ordered"):
        ranks = [np.load(tmp_path / f"{name}.rank{r}.npz") for r in range(n)]
        for k in single.files:
            for other in ranks[1:]:
                assert np.array_equal(ranks[0][k], other[k]), f"{name}: {k} differs between ranks"
            np.testing.assert_allclose(ranks[0][k], single[k], rtol=0, atol=1e-5 * float(np.abs(single[k]).max()))
