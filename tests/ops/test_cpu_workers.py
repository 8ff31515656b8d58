"""The CPU table's worker threads (ops/cpu_workers.py): a split runs every block exactly once on up
to `threads()` threads and passes errors on; the convolution's and batch norm's results are the
same bits for any thread count (blocks of any size, so many blocks and short last ones); the table
takes the BLAS's threads as its own and leaves the BLAS one."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dualnet.ops import cpu_conv, cpu_norm, cpu_workers
from dualnet.ops.cpu import CpuOps
from dualnet.ops.geometry import ConvGeometry
from dualnet.testing import uniform

CPU = CpuOps()


@given(count=st.integers(0, 40), workers=st.integers(1, 5))
def test_split_runs_every_block_exactly_once_on_at_most_the_given_threads(count, workers):
    seen: list[int] = []
    names = set()
    lock = threading.Lock()

    def run(first, stop):
        with lock:
            seen.extend(range(first, stop))
            names.add(threading.current_thread().name)

    with cpu_workers.using(workers):
        cpu_workers.split(run, count)
    assert sorted(seen) == list(range(count))
    assert len(names) <= max(1, min(workers, count))


def test_an_error_in_any_share_reaches_the_caller_after_every_share_finished():
    done = []

    def run(first, stop):
        if first > 0:
            raise ValueError(f"share {first}")
        done.append((first, stop))

    with cpu_workers.using(3), pytest.raises(ValueError, match="share"):
        cpu_workers.split(run, 6)
    assert done == [(0, 2)]


def test_a_split_inside_a_share_runs_on_that_shares_thread():
    inner: dict[int, set] = {}

    def run(first, stop):
        names = set()
        cpu_workers.split(lambda a, b: names.add(threading.current_thread().name), 4)
        inner[first] = names

    with cpu_workers.using(2):
        cpu_workers.split(run, 2)
    assert all(len(names) == 1 for names in inner.values()) and len(inner) == 2


def test_using_and_set_threads_refuse_a_count_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        with cpu_workers.using(0):
            pass
    with pytest.raises(ValueError, match="at least 1"):
        cpu_workers.set_threads(0)


def _convolution(x, w, geom, dy):
    y, saved = CPU.conv2d_forward(x, w, None, geom, 1, "relu")
    wgrad = np.zeros_like(w)
    dx = CPU.conv2d_backward(dy, saved, w, x.shape, geom, 1, wgrad, None)
    return np.array(y), np.array(dx), wgrad


@given(n=st.integers(1, 4), c=st.integers(1, 4), o=st.integers(1, 5), hw=st.integers(3, 9),
       stride=st.sampled_from([1, 2]), block=st.sampled_from([1, 50, 1 << 18]), workers=st.integers(2, 4),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_convolution_gives_the_same_bits_on_any_number_of_threads(n, c, o, hw, stride, block, workers, dtype, seed):
    """A batch-last input, as between a ResNet's layers: stride 1 takes the weight gradient from
    the input gradient's columns (parts summed over blocks), stride 2 the column path."""
    geom = ConvGeometry.of(hw, hw, (3, 3), (stride, stride), (1, 1), (1, 1))
    x = np.ascontiguousarray(uniform((c, hw, hw, n), seed, dtype)).transpose(3, 0, 1, 2)
    w = uniform((o, c, 3, 3), seed + 1, dtype)
    dy = uniform((n, o, geom.out_h, geom.out_w), seed + 2, dtype)
    before = cpu_conv.COLS_BLOCK
    cpu_conv.COLS_BLOCK = block
    try:
        with cpu_workers.using(1):
            one = _convolution(x, w, geom, dy)
        with cpu_workers.using(workers):
            many = _convolution(x, w, geom, dy)
    finally:
        cpu_conv.COLS_BLOCK = before
    for name, a, b in zip(("y", "dx", "dweight"), one, many, strict=True):
        assert a.tobytes() == b.tobytes(), name


def _batchnorm(x, gamma, beta, residual, dy):
    mean, var = np.zeros_like(gamma), np.ones_like(gamma)
    y, saved = CPU.batchnorm_act_forward(x, gamma, beta, mean, var, 1e-5, 0.1, "relu", residual)
    wgrad, bgrad = np.zeros_like(gamma), np.zeros_like(gamma)
    dx, dres = CPU.batchnorm_act_backward(dy, saved, gamma, wgrad, bgrad)
    y_eval = CPU.batchnorm_act_eval(x, gamma, beta, mean, var, 1e-5, "relu", residual)
    return [np.array(a) for a in (y, mean, var, dx, dres, wgrad, bgrad, y_eval)]


@given(n=st.integers(1, 4), c=st.integers(1, 9), hw=st.integers(2, 6), block=st.sampled_from([1, 7, 50, 1 << 18]),
       workers=st.integers(2, 4), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_batch_norm_gives_the_same_bits_on_any_number_of_threads(n, c, hw, block, workers, dtype, seed):
    def batch_last(a):
        return np.ascontiguousarray(a.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)

    x = batch_last(uniform((n, c, hw, hw), seed, dtype))
    residual = batch_last(uniform((n, c, hw, hw), seed + 1, dtype))
    dy = batch_last(uniform((n, c, hw, hw), seed + 2, dtype))
    gamma, beta = uniform((c,), seed + 3, dtype) + 1, uniform((c,), seed + 4, dtype)
    before = cpu_norm.BLOCK
    cpu_norm.BLOCK = block
    try:
        with cpu_workers.using(1):
            one = _batchnorm(x, gamma, beta, residual, dy)
        with cpu_workers.using(workers):
            many = _batchnorm(x, gamma, beta, residual, dy)
    finally:
        cpu_norm.BLOCK = before
    names = ("y", "running_mean", "running_var", "dx", "dresidual", "dweight", "dbias", "y_eval")
    for name, a, b in zip(names, one, many, strict=True):
        assert a.tobytes() == b.tobytes(), name


@pytest.fixture
def openblas():
    """(threadpoolctl, NumPy's OpenBLAS controller); the table's taken count restored afterwards."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = cpu_workers._blas()
    if not blas:
        pytest.skip("NumPy's BLAS here is not OpenBLAS")
    taken = cpu_workers._state["taken"]
    yield threadpoolctl, blas
    cpu_workers._state["taken"] = taken


def test_the_table_takes_the_blas_threads_and_leaves_the_blas_one(openblas):
    threadpoolctl, blas = openblas
    with threadpoolctl.threadpool_limits(3, user_api="blas"):
        assert cpu_workers.threads() == 3
        assert blas.get_num_threads() == 1
        assert cpu_workers.threads() == 3  # kept while the BLAS stays at one


def test_every_share_runs_under_the_callers_numpy_error_state():
    """numpy.errstate lives in the caller's context: a share on another thread keeps it."""
    states = []
    lock = threading.Lock()

    def run(first, stop):
        with lock:
            states.append(np.geterr()["over"])

    with cpu_workers.using(3), np.errstate(over="ignore"):
        cpu_workers.split(run, 3)
    assert states == ["ignore"] * 3


def test_the_cpu_table_takes_the_blas_threads_when_it_starts(openblas):
    """So a model with no blocks (LeNet-5's products) runs the BLAS on one thread too."""
    threadpoolctl, blas = openblas
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        CpuOps()
        assert blas.get_num_threads() == 1 and cpu_workers.threads() == 2


_TRAIN_AND_HASH = """
import hashlib, numpy as np, dualnet as dn
dn.use_device("cpu")
model = dn.models.get("lenet5")
gen = np.random.default_rng(0)
x = gen.random((256, 1, 28, 28), dtype=np.float32); y = gen.integers(0, 10, 256).astype(np.int64)
opt = dn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
dn.fit(model, dn.data.Dataset(x, y, name="s"), None, epochs=1, batch_size=32, optimizer=opt, seed=0)
print(hashlib.sha256(b"".join(dn.to_numpy(p.data).tobytes() for _, p in model.named_parameters())).hexdigest())
"""


def test_cpu_training_gives_the_same_bits_whatever_blas_threads_the_process_started_with():
    """A corpus case: with OpenBLAS's Haswell kernels, LeNet-5's products rounded differently on 2
    BLAS threads than on 1, so a run resumed in another process (the CLI's default count against a
    script's) drifted from the uninterrupted one. The cpu device now runs the BLAS on one thread."""
    import subprocess
    import sys

    digests = set()
    for count in ("1", "2"):
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "GOTO_NUM_THREADS")}
        env.update(OPENBLAS_NUM_THREADS=count, OPENBLAS_CORETYPE="Haswell")
        proc = subprocess.run([sys.executable, "-c", _TRAIN_AND_HASH], env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        digests.add(proc.stdout.strip().splitlines()[-1])
    assert len(digests) == 1, digests
