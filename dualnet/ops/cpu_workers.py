"""The CPU table's worker threads: a convolution's blocks of output rows (cpu_conv.py) and batch
norm's blocks of channels (cpu_norm.py) run on as many threads as the BLAS has been given
(OPENBLAS_NUM_THREADS, threadpoolctl's limits, the CLI's default), each block's products on one
BLAS thread: when the table starts (CpuOps()), and at any later split that finds the BLAS given
more threads, the table takes the BLAS's threads as its own and leaves it one (`take_blas_threads`).

Why not leave the threads to the BLAS: the blocks are cache-sized products (16-64 output channels
by a few thousand columns) between single-threaded copies. OpenBLAS splitting each of them between
two threads made a ResNet-20 epoch slower than one thread on this project's 2-core machines (its
waiting threads spin through the copies in between), while two blocks at a time, one per thread,
made it about 1.5x faster (benchmarks/RESULTS.md, issue 26 part h26d).

The results do not depend on the thread count: the blocks are the same for any count, each block
writes only its own outputs, and whatever is summed over blocks is added in block order on the
calling thread (tests/ops/test_cpu_workers.py). The workers wait on locks, not by spinning. NumPy
releases the GIL in the copies and products a block consists of, so the threads run in parallel.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
#: set on a thread while it runs a share: a split inside a share runs on that thread alone
_inside = threading.local()
_state: dict[str, Any] = {"pool": None, "size": 0, "pid": None, "blas": None, "forced": None, "taken": 1}


def _blas() -> Any:
    """threadpoolctl's controller of the OpenBLAS NumPy uses, or False where there is none."""
    if _state["blas"] is None:
        try:
            from threadpoolctl import ThreadpoolController
            found = ThreadpoolController().select(internal_api="openblas").lib_controllers
        except ImportError:  # threadpoolctl is a dependency; a stripped install runs one thread
            found = []
        # NumPy's own first (its wheels keep it in numpy.libs): SciPy may load a second OpenBLAS
        found.sort(key=lambda lib: "numpy" not in str(lib.filepath))
        _state["blas"] = found[0] if found else False
    return _state["blas"]


def take_blas_threads() -> int:
    """The table's thread count, after taking the BLAS's: when the BLAS has n > 1 threads, the
    blocks get n threads from then on and the BLAS is set to one, for good, since an idle OpenBLAS
    thread spins for a while after each product it shared and would take a core from the blocks'
    threads (benchmarks/RESULTS.md, part h26d). CpuOps() calls it, so LeNet-5's products (no
    blocks) run on one BLAS thread too."""
    blas = _blas()
    if blas:
        given = int(blas.get_num_threads())
        if given > 1:
            set_threads(given)
    return int(_state["taken"])


def threads() -> int:
    """Threads the CPU table's blocks run on: `using`'s count inside `using`, else take_blas_threads()."""
    if _state["forced"] is not None:
        return int(_state["forced"])
    return take_blas_threads()


def set_threads(count: int) -> None:
    """The table's thread count from now on, the BLAS left at one: dualnet.distributed gives each
    rank of a host its share of the cores this way (a count the BLAS alone would not pass on once
    the table has taken the BLAS's threads)."""
    if count < 1:
        raise ValueError(f"cpu_workers.set_threads: count must be at least 1, got {count}")
    blas = _blas()
    if blas:
        blas.set_num_threads(1)
    _state["taken"] = int(count)


@contextmanager
def using(count: int):
    """Run the blocks on `count` threads inside the block whatever the BLAS has (tests, benchmarks)."""
    if count < 1:
        raise ValueError(f"cpu_workers.using: count must be at least 1, got {count}")
    before = _state["forced"]
    _state["forced"] = count
    try:
        yield
    finally:
        _state["forced"] = before


def _pool(size: int) -> ThreadPoolExecutor:
    """A pool of at least `size` threads, made anew in a forked child (a fork copies no threads)."""
    with _lock:
        if _state["pool"] is None or _state["size"] < size or _state["pid"] != os.getpid():
            if _state["pool"] is not None and _state["pid"] == os.getpid():
                _state["pool"].shutdown(wait=False)  # a smaller pool's idle threads end
            _state["pool"] = ThreadPoolExecutor(size, thread_name_prefix="dualnet-cpu")
            _state["size"], _state["pid"] = size, os.getpid()
        return _state["pool"]


def _share(run: Callable[[int, int], None], first: int, stop: int) -> None:
    _inside.share = True
    try:
        run(first, stop)
    finally:
        _inside.share = False


def split(run: Callable[[int, int], None], count: int) -> None:
    """run(first, stop) over contiguous shares of range(count), one share per thread, the first
    on the calling thread; returns when all are done, raising the first share's error if any did."""
    workers = 1 if getattr(_inside, "share", False) else min(threads(), count)
    if workers <= 1:
        run(0, count)
        return
    bounds = [count * i // workers for i in range(workers + 1)]
    pool = _pool(workers - 1)
    # each share in a copy of the caller's context: NumPy's errstate (what the caller lets pass
    # silently, e.g. the training guards' overflow) lives there, and a thread starts without it
    shares = [pool.submit(contextvars.copy_context().run, _share, run, bounds[i], bounds[i + 1])
              for i in range(1, workers)]
    try:
        _share(run, bounds[0], bounds[1])
    finally:
        errors = [share.exception() for share in shares]
    for error in errors:
        if error is not None:
            raise error
