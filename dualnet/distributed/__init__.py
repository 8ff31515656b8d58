"""Data-parallel training over MPI (CPU arrays) and NCCL (CuPy arrays).

DESIGN.md names a module `distributed.py`; this is a package of small modules instead, one job
each: `job` (mpi4py, local rank, threads per rank, abort on error), `mpi_comm` (the `mpi`
communicator), `nccl_comm` (the `nccl` one), `parallel` (what fit asks of the job each step) and
`tally` (the collective step tally).

    comm = dn.distributed.communicator()          # under mpiexec -n N
    dn.fit(model, train, batch_size=64, comm=comm) # 64 = the global batch, 64 / N per rank

Everything is optional: mpi4py is imported only when a communicator is made.
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from .job import DistributedError, abort_on_error, local_device, local_rank_and_size, set_threads, world
from .mpi_comm import REDUCTIONS, Communicator
from .nccl_comm import NcclCommunicator
from .parallel import DataParallel

__all__ = ["communicator", "Communicator", "NcclCommunicator", "DataParallel", "DistributedError", "REDUCTIONS",
           "BACKENDS", "abort_on_error", "local_device", "rank_device", "world"]

BACKENDS = ("mpi", "nccl")


def rank_device(name: str = "auto") -> str:
    """The device this rank should train on: "gpu" or "auto" with a GPU -> "gpu:<local rank>"."""
    rank, _ = local_rank_and_size(world())
    return local_device(name, rank)


def communicator(backend: str | None = None, device: Any = None, reduction: str = "sum",
                 threads: bool = True) -> Communicator:
    """The communicator of this MPI job (COMM_WORLD).

    backend: "mpi" (any device; arrays other than NumPy's go through an explicit host copy) or
    "nccl" (CuPy arrays); default: "nccl" when `device` is a GPU, else "mpi". device: the rank's
    device (a name or dn.Device; default the active one): for "nccl" it is made current before the
    NCCL communicator is created. reduction: "sum" (MPI/NCCL all-reduce) or "ordered" (all-gather,
    then a sum in rank order: bits independent of the library's reduction order). threads: give each
    rank of a host its share of the cores (`set_threads`), warning when ranks oversubscribe them.
    """
    from ..backend import get_device, get_device_object

    dev = get_device() if device is None else get_device_object(device)
    if backend is None:
        backend = "nccl" if dev.kind == "gpu" else "mpi"
    if backend not in BACKENDS:
        raise UsageError(f"dualnet.distributed: unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "nccl" and dev.kind != "gpu":
        raise DistributedError(f"dualnet.distributed: the nccl backend reduces CuPy arrays, but the device is "
                               f"{dev.name!r}; use backend 'mpi' or a gpu device")
    comm = NcclCommunicator(dev.index or 0, reduction=reduction) if backend == "nccl" \
        else Communicator(reduction=reduction)
    if threads:
        set_threads(comm.local_size)
    return comm
