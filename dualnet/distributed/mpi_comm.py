"""The `mpi` communicator: collectives over mpi4py's buffer API.

NumPy arrays (devices "ref", "cpu") are reduced in place; any other array (an "emu" array, which
refuses implicit host conversion, or a CuPy array without NCCL) is staged through an explicit host
copy and written back. Small control values (flags, counts, the run state) travel as host arrays
or small Python objects.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UsageError
from .job import DistributedError, local_rank_and_size, mpi

#: how the gradient sum is formed: "sum" (MPI_Allreduce, the library's order) or "ordered"
#: (all-gather, then a sum in rank order: the same bits whichever MPI library runs it)
REDUCTIONS = ("sum", "ordered")


class Communicator:
    """The ranks of one data-parallel job.

    rank, size: this rank and the world size; local_rank, local_size: the same among the ranks of
    this host. `backend` is "mpi" or "nccl"; `reduction` one of REDUCTIONS.
    """

    backend = "mpi"

    def __init__(self, comm: Any = None, reduction: str = "sum") -> None:
        if reduction not in REDUCTIONS:
            raise UsageError(f"dualnet.distributed: unknown reduction {reduction!r}; choose one of "
                             f"{', '.join(REDUCTIONS)}")
        self.MPI = mpi()
        self.comm = comm if comm is not None else self.MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.local_rank, self.local_size = local_rank_and_size(self.comm)
        self.reduction = reduction
        self._gathered: np.ndarray | None = None  # the ordered reduction's (size, n) receive buffer

    def describe(self) -> dict[str, Any]:
        """What a checkpoint records about the job that wrote it."""
        return {"world_size": self.size, "backend": self.backend, "reduction": self.reduction}

    # --- device arrays ----------------------------------------------------------------------

    def allreduce_sum(self, array: Any) -> None:
        """Replace `array` (a contiguous 1-d device array, the same length on every rank) by its sum over ranks."""
        host = _host_view(array)
        self._sum_host(host)
        if host is not array:
            _write_back(array, host)

    def broadcast(self, array: Any, root: int = 0) -> None:
        """Overwrite `array` on every rank with root's `array` (same shape and dtype on every rank)."""
        host = _host_view(array)
        self.comm.Bcast(host, root=root)
        if host is not array:
            _write_back(array, host)

    def _sum_host(self, host: np.ndarray) -> None:
        if self.reduction == "sum":
            self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM)
            return
        if self._gathered is None or self._gathered.shape != (self.size, host.size) \
                or self._gathered.dtype != host.dtype:
            self._gathered = np.empty((self.size, host.size), dtype=host.dtype)
        self.comm.Allgather(host, self._gathered)
        # rank 0 + rank 1 + ... left to right, the same order on every rank and in every library
        np.copyto(host, self._gathered[0])
        for r in range(1, self.size):
            host += self._gathered[r]

    # --- host control values ----------------------------------------------------------------

    def allreduce_host(self, values: np.ndarray, op: str = "sum") -> np.ndarray:
        """The elementwise sum ("sum") or maximum ("max") over ranks of a small host array."""
        out = np.array(values, copy=True)
        self.comm.Allreduce(self.MPI.IN_PLACE, out, op=self.MPI.SUM if op == "sum" else self.MPI.MAX)
        return out

    def allgather(self, obj: Any) -> list[Any]:
        """Every rank's `obj` (a small picklable value), in rank order."""
        return list(self.comm.allgather(obj))

    def bcast_object(self, obj: Any, root: int = 0) -> Any:
        """Root's `obj` on every rank."""
        return self.comm.bcast(obj, root=root)

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)


def _host_view(array: Any) -> np.ndarray:
    """`array` itself when it is a contiguous NumPy array, else an explicit host copy of it."""
    if isinstance(array, np.ndarray):
        if not array.flags.c_contiguous:
            raise DistributedError("dualnet.distributed: collectives need contiguous arrays (the flat buffers are); "
                                   f"got strides {array.strides} for shape {array.shape}")
        return array
    return np.ascontiguousarray(array.get())


def _write_back(array: Any, host: np.ndarray) -> None:
    from ..backend import array_device, to_device

    array[...] = to_device(host, array_device(array))
