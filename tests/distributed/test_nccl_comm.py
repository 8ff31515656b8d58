"""The nccl communicator's logic with two thread ranks, cupy.cuda.nccl stood in (tests/standins/nccl.py);
its real run on GPUs is test_nccl_gpu.py."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install \".[mpi]\")")

from standins.nccl import NCCL_FLOAT32, DeviceXp, NcclModule, ThreadComm, device_array  # noqa: E402

from dualnet.distributed import DistributedError, NcclCommunicator  # noqa: E402


def _on_ranks(body: Callable[[int], Any], size: int = 2) -> list[Any]:
    """body(rank) on `size` threads at once; its results in rank order (an exception is re-raised)."""
    results: list[Any] = [None] * size

    def target(r: int) -> None:
        try:
            results[r] = body(r)
        except BaseException as exc:  # re-raised in the test's thread
            results[r] = exc

    threads = [threading.Thread(target=target, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for value in results:
        if isinstance(value, BaseException):
            raise value
    return results


def _communicators(reduction: str = "sum") -> tuple[NcclModule, list[NcclCommunicator], list[tuple]]:
    module, comms, selected = NcclModule(), ThreadComm.world(2), []

    def make(r: int) -> NcclCommunicator:
        def select(index: int) -> None:
            selected.append((r, index, r in module.created))

        return NcclCommunicator(r, comm=comms[r], reduction=reduction, nccl=module, stream=lambda: 1000 + r,
                                select=select, xp=DeviceXp)

    return module, _on_ranks(make), selected


def test_nccl_selects_the_rank_device_before_creating_the_communicator() -> None:
    module, comms, selected = _communicators()
    assert sorted(selected) == [(0, 0, False), (1, 1, False)]
    assert sorted(module.created) == [0, 1]
    assert len(module.groups) == 1  # rank 0's unique id reached rank 1 (over MPI)
    assert [c.backend for c in comms] == ["nccl", "nccl"]


def test_nccl_allreduce_sums_in_place_once_on_the_compute_stream() -> None:
    module, comms, _ = _communicators()
    arrays = [device_array(np.arange(5) + 10 * r) for r in range(2)]
    _on_ranks(lambda r: comms[r].allreduce_sum(arrays[r]))
    for a in arrays:
        np.testing.assert_array_equal(np.asarray(a), np.arange(5) * 2 + 10)
    assert sorted(module.calls) == [(0, "allReduce", 5, NCCL_FLOAT32, 1000), (1, "allReduce", 5, NCCL_FLOAT32, 1001)]


def test_nccl_ordered_reduction_is_the_rank_ordered_sum_of_a_gather() -> None:
    module, comms, _ = _communicators("ordered")
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(7).astype(np.float32) * 10.0 ** (3 * r) for r in range(2)]
    arrays = [device_array(v) for v in values]
    _on_ranks(lambda r: comms[r].allreduce_sum(arrays[r]))
    expected = values[0].copy()
    expected += values[1]
    for a in arrays:
        assert np.array_equal(np.asarray(a), expected)
    assert {call[1] for call in module.calls} == {"allGather"}


def test_nccl_broadcast_gives_every_rank_the_roots_array() -> None:
    _, comms, _ = _communicators()
    arrays = [device_array([1.5 + r, -2.0 * r], np.float64) for r in range(2)]
    counters = [device_array(7 * r + 1, np.int64) for r in range(2)]  # a 0-d int64, as num_batches_tracked
    _on_ranks(lambda r: (comms[r].broadcast(arrays[r], root=1), comms[r].broadcast(counters[r], root=1)))
    for a, c in zip(arrays, counters):
        np.testing.assert_array_equal(np.asarray(a), [2.5, -2.0])
        assert int(c) == 8


def test_nccl_refuses_other_dtypes_naming_the_ones_it_takes() -> None:
    _, comms, _ = _communicators()
    with pytest.raises(DistributedError, match="cannot reduce bool arrays.*float32, float64, float16, int32, int64"):
        comms[0].allreduce_sum(device_array([True, False], np.bool_))
