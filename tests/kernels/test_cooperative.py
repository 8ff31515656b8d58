"""The cooperative emulator: shared memory, barriers and warp primitives run as CUDA defines them,
and every planted fault (missing barrier, divergent barrier, early exit, out-of-bounds shared
index, racy write, too much shared memory, divergent shuffle, misaligned 16-byte access) is caught
on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dualnet.kernels.binding import check_launch_limits
from dualnet.kernels.emulator import EmulatorLauncher, emulator_available
from dualnet.kernels.errors import KernelCheckError, KernelLaunchError
from dualnet.kernels.signatures import Kernel, KernelTable, array_in, array_out, int32

DTYPES = [np.float32, np.float64]
FAULTS = ("missing_barrier", "divergent_barrier", "exit_before_barrier", "shared_out_of_bounds", "racy_write",
          "read_before_write", "too_much_shared", "divergent_shuffle", "misaligned_vector")


def _rows(name: str) -> Kernel:
    return Kernel(name, "faulty_coop.cu", (array_in("x", "rows*cols"), array_out("y", "rows"), int32("rows"),
                                           int32("cols")), "rows", block=64, grid=("rows",))


TABLE = KernelTable([
    _rows("block_sum_ok"), *(_rows(n) for n in FAULTS),
    Kernel("warp_ops_ok", "faulty_coop.cu", (array_in("x", "rows*64"), array_out("y", "rows*64"), int32("rows")),
           "rows*64", block=64, grid=("rows",)),
    Kernel("undeclared_barrier", "faulty_coop.cu", (array_in("x", "size"), array_out("y", "size"), int32("size")),
           "size"),
], source_dir=Path(__file__).resolve().parent)


@pytest.fixture(scope="module")
def emus():
    ok, why = emulator_available()
    if not ok:
        pytest.skip(why)
    checking = EmulatorLauncher(check=True, table=TABLE)
    checking.compile_all()
    return checking, EmulatorLauncher(table=TABLE)


def rows_input(dtype, rows=3, cols=100, seed=0):
    x = np.random.default_rng(seed).standard_normal((rows, cols)).astype(dtype)
    return x, np.zeros(rows, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cols", [1, 63, 64, 200])
def test_block_sum_matches_numpy_under_every_schedule(emus, dtype, cols):
    checking, _ = emus
    x, y = rows_input(dtype, cols=cols)
    checking.launch("block_sum_ok", dtype, x, y, 3, cols)  # the race check runs 4 schedules
    np.testing.assert_allclose(y, x.sum(axis=1, dtype=np.float64), rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_warp_primitives_follow_cuda(emus, dtype):
    checking, _ = emus
    x = np.random.default_rng(1).standard_normal((2, 64)).astype(dtype)
    y = np.zeros_like(x)
    checking.launch("warp_ops_ok", dtype, x, y, 2)
    warps = x.reshape(4, 32)
    want = warps.sum(axis=1, keepdims=True) + warps[:, :1] + (warps > 0).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(y.reshape(4, 32), np.broadcast_to(want, (4, 32)), rtol=1e-5)


def test_missing_barrier_is_a_race(emus):
    checking, plain = emus
    with pytest.raises(KernelCheckError, match=r"missing_barrier<float> is schedule-dependent \(a race\): "
                                               r"parameter y differs at flat index 0"):
        checking.launch("missing_barrier", np.float32, *rows_input(np.float32), 3, 100)
    x, y = rows_input(np.float32)
    plain.launch("missing_barrier", np.float32, x, y, 3, 100)  # one schedule alone cannot tell


def test_racy_write_is_a_race(emus):
    with pytest.raises(KernelCheckError, match=r"racy_write<double> is schedule-dependent"):
        emus[0].launch("racy_write", np.float64, *rows_input(np.float64), 3, 100)


@pytest.mark.parametrize("which", [0, 1], ids=["checking", "plain"])
def test_divergent_barrier_names_kernel_and_lines(emus, which):
    with pytest.raises(KernelCheckError, match=r"kernel divergent_barrier<float>, block \(0, 0, 0\), thread \d+: "
                                               r"divergent __syncthreads\(\): waits at line \d+ while thread 0 "
                                               r"waits at line \d+"):
        emus[which].launch("divergent_barrier", np.float32, *rows_input(np.float32), 3, 100)


def test_exit_while_others_wait(emus):
    with pytest.raises(KernelCheckError, match=r"kernel exit_before_barrier<float>, block \(0, 0, 0\), thread 32: "
                                               r"exited while 32 threads wait at __syncthreads\(\) \(line \d+\)"):
        emus[1].launch("exit_before_barrier", np.float32, *rows_input(np.float32), 3, 100)


def test_shared_index_out_of_bounds(emus):
    with pytest.raises(KernelCheckError, match=r"kernel shared_out_of_bounds<double>, block \(0, 0, 0\), "
                                               r"thread 63: shared array partial\[64\] indexed at 64"):
        emus[1].launch("shared_out_of_bounds", np.float64, *rows_input(np.float64), 3, 100)


@pytest.mark.parametrize("dtype", DTYPES)
def test_shared_memory_is_poisoned_at_block_start(emus, dtype):
    x, y = rows_input(dtype)
    emus[0].launch("read_before_write", dtype, x, y, 3, 100)  # deterministic: the poison is
    assert np.isnan(y).all()


def test_shared_memory_limit(emus):
    with pytest.raises(KernelCheckError, match=r"too_much_shared<float>.* uses 65536 bytes of shared memory "
                                               r"per block; the limit is 49152"):
        emus[1].launch("too_much_shared", np.float32, *rows_input(np.float32), 3, 100)


def test_divergent_shuffle(emus):
    with pytest.raises(KernelCheckError, match=r"divergent_shuffle<float>.*thread 16: exited while 16 threads "
                                               r"of its warp wait at __shfl_down_sync"):
        emus[1].launch("divergent_shuffle", np.float32, *rows_input(np.float32), 3, 100)


def test_misaligned_vector_access(emus):
    """A float4 / double2 access off a 16-byte boundary faults on a GPU: the emulator reports it."""
    with pytest.raises(KernelCheckError, match=r"misaligned_vector<float>.* a 16-byte vector load at 0x[0-9a-f]+ "
                                               r"is not 16-byte aligned"):
        emus[1].launch("misaligned_vector", np.float32, *rows_input(np.float32, cols=64), 3, 64)


def test_barrier_in_an_undeclared_kernel(emus):
    x = np.arange(10, dtype=np.float32)
    with pytest.raises(KernelCheckError, match=r"undeclared_barrier<float>.* calls __syncthreads\(\) but is "
                                               r"declared without a block size"):
        emus[1].launch("undeclared_barrier", np.float32, x, np.zeros_like(x), 10)


def test_launch_limits_as_a_gpu_checks_them(emus):
    with pytest.raises(KernelLaunchError, match=r"kernel block_sum_ok: grid x dimension -1"):
        check_launch_limits("block_sum_ok", (-1, 1, 1), 64)
    with pytest.raises(KernelLaunchError, match=r"grid y dimension 65536 is outside \[0, 65535\]"):
        check_launch_limits("k", (1, 65536, 1), 64)
    with pytest.raises(KernelLaunchError, match=r"2048 threads per block; a GPU allows 1 to 1024"):
        check_launch_limits("k", (1, 1, 1), 2048)
    with pytest.raises(ValueError, match=r"block must be a multiple of 32 in \[32, 1024\], got 2048"):
        Kernel("k", "x.cu", (array_out("y", "n"), int32("n")), "n", block=2048, grid=("n",))
    with pytest.raises(ValueError, match="declares both block and grid"):
        Kernel("k", "x.cu", (array_out("y", "n"), int32("n")), "n", block=64)


def test_an_empty_grid_launches_nothing(emus):
    emus[0].launch("block_sum_ok", np.float32, np.zeros(0, np.float32), np.zeros(0, np.float32), 0, 0)


def test_the_cooperative_kernels_are_cuda_nvrtc_compiles():
    """DN_SHARED, the barriers and the warp primitives are the real CUDA ones on a GPU."""
    pytest.importorskip("cupy_backends.cuda.libs.nvrtc", reason="NVRTC check needs cupy-cuda12x")
    from dualnet.kernels.nvrtc_check import compile_source_ptx

    res = compile_source_ptx(TABLE, "faulty_coop.cu", "compute_80")
    assert "bar.sync" in res.ptx and "shfl.sync.down" in res.ptx and ".shared" in res.ptx
    assert set(res.lowered) == set(TABLE.instantiations())


def test_concurrent_launches_on_other_threads_keep_their_own_fibers_and_shared_memory(emus):
    import threading

    plain = emus[1]
    problems: list[str] = []

    def work(seed: int) -> None:
        x = np.random.default_rng(seed).standard_normal((20, 300))
        y = np.zeros(20)
        for _ in range(3):
            plain.launch("block_sum_ok", np.float64, x, y, 20, 300)
            if not np.allclose(y, x.sum(axis=1), rtol=1e-12):
                problems.append(f"thread {seed}: wrong sums")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert problems == []
