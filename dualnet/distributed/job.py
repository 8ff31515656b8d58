"""The MPI world a process runs in: mpi4py imported with a clear error, the rank's local rank
(ranks sharing this host, from `COMM_TYPE_SHARED`), threads per rank, and abort on error."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from ..errors import DualnetError
from ..optional import broken

INSTALL_HINT = 'pip install "dualnet[mpi]" (mpi4py and the MPICH wheel), then run under mpiexec -n N'


class DistributedError(DualnetError):
    """A distributed run cannot start (no MPI, a bad world size, no NCCL); the message says why and how to fix it."""


def mpi() -> Any:
    """mpi4py's MPI module (initialising MPI), or DistributedError naming the extra to install."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "mpi4py":
            raise DistributedError(f"distributed training needs mpi4py ({exc}): {INSTALL_HINT}") from None
        raise DistributedError(broken("mpi4py", exc, INSTALL_HINT)) from None
    except Exception as exc:  # mpi4py's own import (or MPI's initialisation) failed
        raise DistributedError(broken("mpi4py", exc, INSTALL_HINT)) from None
    return MPI


def world() -> Any:
    """COMM_WORLD."""
    return mpi().COMM_WORLD


def local_rank_and_size(comm: Any) -> tuple[int, int]:
    """(this rank's index among the ranks on its host, how many ranks share the host)."""
    node = comm.Split_type(mpi().COMM_TYPE_SHARED, key=comm.Get_rank())
    try:
        return node.Get_rank(), node.Get_size()
    finally:
        node.Free()


def local_device(name: str, local_rank: int) -> str:
    """The device a rank trains on: "gpu" (and "auto" where a GPU is usable) become "gpu:<local rank>",
    so the ranks of one host take one GPU each; every other name is kept."""
    if name == "gpu":
        return f"gpu:{local_rank}"
    if name == "auto":
        from ..backend import devices

        gpus = [d for d in devices() if d.name.startswith("gpu") and d.available]
        return f"gpu:{local_rank}" if gpus else "cpu"
    return name


def mpiexec_path() -> str | None:
    """The mpiexec beside this Python (where the MPICH wheel puts it), else the one on PATH, else None."""
    beside = pathlib.Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_threads(local_size: int) -> int:
    """Give each of the host's `local_size` ranks its share of the cores for BLAS/OpenMP.

    Threads set in OMP_NUM_THREADS or OPENBLAS_NUM_THREADS are kept as given (the CLI's own
    default, marked in DUALNET_DEFAULT_BLAS_THREADS, is replaced). Warns when the
    ranks would oversubscribe the cores. Returns the thread count per rank.
    """
    cores = _cores()
    given = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if given and os.environ.get("DUALNET_DEFAULT_BLAS_THREADS") == given:
        given = None  # the CLI's default (dualnet_cli/blas_threads.py), not the user's: ranks share the cores
    threads = int(given) if given and given.isdigit() and int(given) > 0 else max(1, cores // local_size)
    if threads * local_size > cores:
        warnings.warn(f"dualnet.distributed: {local_size} ranks x {threads} threads on {cores} cores oversubscribe "
                      f"the host and slow every rank; run at most {cores} ranks here, or set OMP_NUM_THREADS="
                      f"{max(1, cores // local_size)}", RuntimeWarning, stacklevel=2)
    if not given:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            warnings.warn("dualnet.distributed: threadpoolctl is missing, so BLAS threads per rank are not set; "
                          f"{INSTALL_HINT}", RuntimeWarning, stacklevel=2)
        else:
            threadpool_limits(threads)
            from ..ops import cpu_workers  # the cpu table's own threads, which took the BLAS's

            cpu_workers.set_threads(threads)
            # threads the process starts later (OpenMP pools of libraries loaded afterwards) follow too
            os.environ["OMP_NUM_THREADS"] = str(threads)
    return threads


def abort(comm: Any, code: int = 1) -> None:
    """End every rank of the job now: the others may be blocked in a collective that will never complete."""
    sys.stdout.flush()
    sys.stderr.flush()
    comm.Abort(code)


@contextlib.contextmanager
def abort_on_error(comm: Any, collective: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Abort the job when the block raises anything but `collective` exceptions (those every rank
    raises at the same step) or a clean SystemExit; prints the error, one line, naming the rank."""
    try:
        yield
    except collective:
        raise
    except SystemExit as exc:
        if exc.code in (None, 0) or comm.Get_size() == 1:
            raise
        abort(comm, exc.code if isinstance(exc.code, int) else 1)
    except BaseException as exc:
        if comm.Get_size() == 1:
            raise
        print(f"dualnet: error: rank {comm.Get_rank()} of {comm.Get_size()}: {type(exc).__name__}: {exc}; "
              "aborting the job", file=sys.__stderr__)
        abort(comm, 1)
