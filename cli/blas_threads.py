"""The CLI's default BLAS thread count and kernels, fixed before NumPy loads OpenBLAS (imported
first by the package, so no other import can have loaded NumPy yet; this module imports only os).

The count: the usable cores (the process's affinity mask). It is the CPU device's thread count:
dualnet's CPU table takes the BLAS's threads as its own when it starts (dualnet/ops/cpu_workers.py),
runs a convolution's blocks of output rows and batch norm's blocks of channels on that many
threads of its own, which wait on locks, and leaves OpenBLAS one thread. OpenBLAS's own threads
spin while they wait for one another, and beside another busy process a 2-thread LeNet-5 epoch
took 16 s against 1.3 s with 1 thread (benchmarks/RESULTS.md, "Behaviour under load"); so until the
table's own threads existed this default was one core fewer than usable, 1 on 2 cores. With them
a ResNet-8 epoch on 2 cores takes 0.69 s alone and 0.95 s beside one busy process, against 0.92 and
0.94 s on 1 thread and PyTorch's 0.61 and 1.44 s (part h26d). LeNet-5's products run on the one
BLAS thread either way. A thread count the user set (OPENBLAS_NUM_THREADS, GOTO_NUM_THREADS,
OMP_NUM_THREADS) is kept as given: `OPENBLAS_NUM_THREADS=1 dualnet train ...` runs on one core.

The count does not change the `cpu` device's results: the table's blocks give the same bits on any
number of threads and its products run on the one BLAS thread (tests/ops/test_cpu_workers.py).

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
    """Every usable core, at least one thread."""
    return max(1, cores)


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
