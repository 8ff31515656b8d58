"""The CLI's default BLAS thread count and kernels, fixed before NumPy loads OpenBLAS (imported
first by the package, so no other import can have loaded NumPy yet; this module imports only os).

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

The count may change float32 rounding, so a run is reproduced with the same count (the README and
docs/training.md say how to set it).

The kernels: OpenBLAS picks its kernels by CPU model, and does not know every AMD CPU with
AVX-512: on this project's machines (AMD EPYC, family 26) it falls back to its Haswell (AVX2) ones. On a CPU with
AMD's vendor id and the AVX-512 subsets the SkylakeX kernels need (F, CD, BW, DQ, VL), the CLI
sets OPENBLAS_CORETYPE=SkylakeX unless the user set OPENBLAS_CORETYPE: measured 1.4x the images/s
of a ResNet-20 eval forward (1 thread), and the same float32 results as on the Intel AVX-512
machines the project's reference figures come from (`dualnet train --epochs 1 --limit 5000`:
train_loss 0.7992358469247818, against 0.7970347164392472 with the Haswell kernels). Intel CPUs
are left to OpenBLAS, which knows them.
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


#: the AVX-512 subsets OpenBLAS's SkylakeX kernels use (/proc/cpuinfo flag names)
SKYLAKEX_FLAGS = frozenset({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, frozenset[str]]:
    """(vendor id, flags) of the first CPU in `cpuinfo`; ("", empty) where there is no such file."""
    vendor, flags = "", frozenset()
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "vendor_id" and not vendor:
                    vendor = value.strip()
                elif key.strip() == "flags":
                    flags = frozenset(value.split())
                    break
    except OSError:
        pass
    return vendor, flags


def choose_kernel(environ: dict | None = None, cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """Set OPENBLAS_CORETYPE=SkylakeX in `environ` (os.environ) on an AMD CPU with the AVX-512
    subsets SkylakeX needs, unless OPENBLAS_CORETYPE is set; returns what it set, or None."""
    env = os.environ if environ is None else environ
    if env.get("OPENBLAS_CORETYPE"):
        return None
    vendor, flags = cpu_flags(cpuinfo)
    if vendor != "AuthenticAMD" or not SKYLAKEX_FLAGS <= flags:
        return None
    env["OPENBLAS_CORETYPE"] = "SkylakeX"
    return "SkylakeX"


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
