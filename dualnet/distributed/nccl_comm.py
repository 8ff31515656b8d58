"""The `nccl` communicator: CuPy arrays reduced by NCCL on the compute stream, control over MPI.

Made in the order NCCL needs: the rank's GPU is selected first (`gpu:<local rank>`), rank 0 makes
the unique id, MPI broadcasts it, then every rank creates its `NcclCommunicator(size, id, rank)`.
The API used is `cupy.cuda.nccl`'s: `get_unique_id()`, `NcclCommunicator(ndev, commId, rank)`,
`allReduce(sendbuf, recvbuf, count, datatype, op, stream)`, `allGather(sendbuf, recvbuf, count,
datatype, stream)`, `bcast(buff, count, datatype, root, stream)`, buffers and streams passed as
raw pointers. The module and the stream are injectable, so the logic runs under a stand-in too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .job import DistributedError
from .mpi_comm import Communicator

NCCL_HINT = 'pip install "dualnet[gpu]" (it brings NCCL: nvidia-nccl-cu12), or pass --device cpu'


def import_nccl() -> Any:
    try:
        from cupy.cuda import nccl
    except ImportError as exc:
        raise DistributedError(f"the nccl backend needs CuPy's NCCL binding ({exc}): {NCCL_HINT}") from None
    if not getattr(nccl, "available", True):
        raise DistributedError(f"the nccl backend needs the NCCL library, which CuPy did not find: {NCCL_HINT}")
    return nccl


def _current_stream() -> int:
    import cupy

    return int(cupy.cuda.get_current_stream().ptr)


def _pointer(array: Any) -> int:
    return int(array.data.ptr)


class NcclCommunicator(Communicator):
    """Communicator whose device collectives run in NCCL; see the module docstring.

    device_index: the GPU this rank uses (made current before the NCCL communicator is created).
    nccl, stream, select, xp: the NCCL module, the stream pointer, the device selection and the
    array module; CuPy's unless given (a stand-in in tests).
    """

    backend = "nccl"

    def __init__(self, device_index: int, comm: Any = None, reduction: str = "sum", nccl: Any = None,
                 stream: Callable[[], int] = _current_stream, select: Callable[[int], None] | None = None,
                 xp: Any = None) -> None:
        super().__init__(comm, reduction)
        self.nccl = nccl if nccl is not None else import_nccl()
        if xp is None:
            import cupy

            xp = cupy
        self.xp = xp  # allocates the ordered reduction's gather buffer
        self.stream = stream
        (select or _select_gpu)(device_index)
        uid = self.nccl.get_unique_id() if self.rank == 0 else None
        uid = self.bcast_object(uid, root=0)
        self.nccl_comm = self.nccl.NcclCommunicator(self.size, uid, self.rank)
        # integers travel too: a broadcast at the start carries counters such as num_batches_tracked
        self._types = {"float32": self.nccl.NCCL_FLOAT32, "float64": self.nccl.NCCL_FLOAT64,
                       "float16": self.nccl.NCCL_FLOAT16, "int32": self.nccl.NCCL_INT32,
                       "int64": self.nccl.NCCL_INT64}
        self._gathered_dev: Any = None

    def _dtype(self, array: Any) -> Any:
        name = str(array.dtype)
        if name not in self._types:
            raise DistributedError(f"dualnet.distributed (nccl): cannot reduce {name} arrays; the flat buffers are "
                                   f"one of {', '.join(self._types)}")
        return self._types[name]

    def allreduce_sum(self, array: Any) -> None:
        if self.reduction == "sum":
            self.nccl_comm.allReduce(_pointer(array), _pointer(array), int(array.size), self._dtype(array),
                                     self.nccl.NCCL_SUM, self.stream())
            return
        shape = (self.size, int(array.size))
        if self._gathered_dev is None or tuple(self._gathered_dev.shape) != shape \
                or self._gathered_dev.dtype != array.dtype:
            self._gathered_dev = self.xp.empty(shape, dtype=array.dtype)
        self.nccl_comm.allGather(_pointer(array), _pointer(self._gathered_dev), int(array.size),
                                 self._dtype(array), self.stream())
        # rank 0 + rank 1 + ... in order on the device, on the same stream (enqueued after the gather)
        array[...] = self._gathered_dev[0]
        for r in range(1, self.size):
            array += self._gathered_dev[r]

    def broadcast(self, array: Any, root: int = 0) -> None:
        self.nccl_comm.bcast(_pointer(array), int(array.size), self._dtype(array), root, self.stream())


def _select_gpu(index: int) -> None:
    try:
        import cupy
    except ImportError as exc:
        raise DistributedError(f"the nccl backend needs CuPy ({exc}): {NCCL_HINT}") from None
    cupy.cuda.Device(index).use()
