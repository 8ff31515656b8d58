"""The CLI's default BLAS thread count, fixed before NumPy loads OpenBLAS (imported first by the
package, so no other import can have loaded NumPy yet; this module imports nothing else).

OpenBLAS (NumPy's BLAS) starts one thread per core, and its threads spin while they wait for one
another: each matrix product is split between them and finishes only when the last part does.
When another process holds one of the cores, the part given to the descheduled thread waits a
whole scheduler time slice while its peer spins, and that happens at every product. Measured on
this project's 2-core machines while other processes ran (benchmarks/RESULTS.md, "Behaviour under
load"): a LeNet-5 epoch of 10,000 images took 47-93 s with 2 threads and 2.0-2.2 s with 1; shorter
spinning (OPENBLAS_THREAD_TIMEOUT=4) made it worse (82 s), since a sleeping thread then waits to be
woken. So the CLI leaves one core to the rest of the machine: max(1, usable cores - 1) threads,
which on 2 cores is 1 (no waiting at all) and costs 1/N of the BLAS throughput on an idle N-core
machine. A thread count the user set (OPENBLAS_NUM_THREADS, GOTO_NUM_THREADS, OMP_NUM_THREADS) is
kept as given: `OPENBLAS_NUM_THREADS=2 dualnet train ...` uses both cores of an idle machine.

The count changes float32 rounding (OpenBLAS splits a product differently per thread count), so
a run's numbers are reproduced with the same count: the run prints nothing new, but `dualnet info`
and the README say how to set it.
"""

from __future__ import annotations

import os

#: the environment variables that fix OpenBLAS's thread count; one set by the user wins
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
#: set to the count this module chose, so that dualnet.distributed knows the count is a default
#: (it gives each rank its share of the cores instead) and not the user's
CHOSEN_MARK = "DUALNET_DEFAULT_BLAS_THREADS"


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask: a container's or taskset's limit)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_threads(cores: int) -> int:
    """One core left to the rest of the machine, at least one thread."""
    return max(1, cores - 1)


def choose(environ: dict | None = None) -> int | None:
    """Set OPENBLAS_NUM_THREADS to the default in `environ` (os.environ) unless a thread count is
    already set there; returns the count chosen, or None when the user's is kept."""
    env = os.environ if environ is None else environ
    if any(env.get(var) for var in THREAD_VARIABLES):
        return None
    threads = default_threads(usable_cores())
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    env[CHOSEN_MARK] = str(threads)
    return threads
