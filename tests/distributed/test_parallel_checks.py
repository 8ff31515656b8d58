"""DataParallel's refusals and the world helpers, with two thread ranks (no mpiexec needed)."""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install \".[mpi]\")")

from standins.nccl import ThreadComm  # noqa: E402
from test_nccl_comm import _on_ranks  # noqa: E402

import dualnet as dn  # noqa: E402
from dualnet.distributed import Communicator, DataParallel, DistributedError, local_device, set_threads  # noqa: E402
from dualnet.ops import cpu_workers  # noqa: E402
from dualnet.train import TrainState  # noqa: E402
from dualnet.train.batches import DeviceBatches, HostBatches  # noqa: E402


def _start(batch_size: int, n: list[int]) -> list[object]:
    comms = ThreadComm.world(2)

    def body(r: int) -> object:
        model = dn.models.get("mlp", seed=r)
        opt = dn.optim.SGD(model.parameters(), lr=0.1)
        try:
            return DataParallel(Communicator(comms[r]), model, opt, TrainState(seed=r), batch_size, n[r])
        except DistributedError as exc:
            return str(exc)

    return _on_ranks(body)


def test_batch_size_not_divisible_by_world_size_is_refused_on_every_rank() -> None:
    messages = _start(63, [100, 100])
    assert messages[0] == messages[1]
    assert "batch_size 63 is not divisible by the world size 2" in str(messages[0]) and "e.g. 62" in str(messages[0])


def test_last_batch_smaller_than_world_size_is_refused() -> None:
    messages = _start(64, [129, 129])
    assert "the last batch of each epoch has 1 image(s), fewer than the 2 ranks" in str(messages[0])


def test_ranks_with_different_data_are_refused_naming_each_rank() -> None:
    messages = _start(64, [128, 192])
    assert "rank 0: (128, 64), rank 1: (192, 64)" in str(messages[0])


def test_start_broadcasts_rank0_parameters_and_run_state() -> None:
    started = _start(64, [128, 128])
    a, b = (dp for dp in started if isinstance(dp, DataParallel))
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert np.array_equal(p.data, q.data)
    assert a.state.seed == b.state.seed == 0


def test_share_of_each_batch_is_its_rank_slice_of_the_seeded_order() -> None:
    started = _start(4, [10, 10])
    order = dn.data.epoch_order(10, 0, 0)
    images = (np.arange(10) / 10).astype(np.float32).reshape(10, 1, 1, 1)
    train = dn.data.Dataset(images, np.arange(10))
    pixel = images.ravel()
    for dp in started:
        assert isinstance(dp, DataParallel)
        dev = dn.get_device()
        # images on the device, gathered by the rank's share of the order
        on_device = DeviceBatches(train, images, dev, dp, 4, 0)
        # a global batch fit prepared on the host (augmented, normalized; here x / 0.5): the rank's slice of it
        on_host = HostBatches(train, dev, dp, 4, 0, (0, 0, False), {"mean": [0.0], "std": [0.5]},
                              np.dtype(np.float32))
        for source in (on_device, on_host):
            source.start_epoch(0, 0)
        for step in range(3):
            want = order[step * 4:(step + 1) * 4][dp.rank::2]
            weight = len(want) / len(order[step * 4:(step + 1) * 4])
            x, y, size, w = on_device.batch(step)
            np.testing.assert_array_equal(y, want)
            np.testing.assert_array_equal(x.ravel(), pixel[want])
            assert (size, w) == (min(4, 10 - step * 4), weight)
            x, y, size, w = on_host.batch(step)
            np.testing.assert_array_equal(y, want)
            np.testing.assert_array_equal(x.ravel(), pixel[want] * 2)
            assert (size, w) == (min(4, 10 - step * 4), weight)


def test_gpu_and_auto_map_to_the_local_rank_and_others_are_kept() -> None:
    assert local_device("gpu", 3) == "gpu:3"
    assert local_device("cpu", 1) == "cpu" and local_device("emu", 1) == "emu" and local_device("gpu:2", 1) == "gpu:2"
    assert local_device("auto", 1) in ("cpu", "gpu:1")


def test_threads_warn_when_ranks_oversubscribe_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    monkeypatch.setattr("dualnet.distributed.job._cores", lambda: 4)
    with pytest.warns(RuntimeWarning, match="2 ranks x 4 threads on 4 cores oversubscribe"):
        assert set_threads(2) == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert set_threads(2) == 2


def test_the_cli_default_thread_count_gives_way_to_the_ranks_share(monkeypatch: pytest.MonkeyPatch) -> None:
    """dualnet_cli sets OPENBLAS_NUM_THREADS to its default (the usable cores) and marks it as such: the
    ranks then share the cores instead of each keeping that count."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "7")
    monkeypatch.setenv("DUALNET_DEFAULT_BLAS_THREADS", "7")
    monkeypatch.setattr("dualnet.distributed.job._cores", lambda: 8)
    monkeypatch.setitem(sys.modules, "threadpoolctl", types.SimpleNamespace(threadpool_limits=lambda n: None))
    monkeypatch.setitem(cpu_workers._state, "blas", False)  # the real BLAS left alone
    monkeypatch.setitem(cpu_workers._state, "taken", 8)  # as if the cpu table had taken the CLI's count
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert set_threads(2) == 4
    assert cpu_workers.threads() == 4  # the table's own threads follow the rank's share

