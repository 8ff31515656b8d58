"""Stand-ins for `cupy.cuda.nccl` and for an MPI communicator, for ranks that are threads of one process.

The NCCL stand-in follows cupy.cuda.nccl's API as CuPy documents it (cupy/cuda/nccl.pyx):
`get_unique_id()` returns the id as a tuple of ints, `NcclCommunicator(ndev, commId, rank)` joins
the ranks that share the id, and the collectives take raw device pointers, an element count, an
NCCL datatype constant, an op constant and a stream pointer:
`allReduce(sendbuf, recvbuf, count, datatype, op, stream)`, `allGather(sendbuf, recvbuf, count,
datatype, stream)`, `bcast(buff, count, datatype, root, stream)`. Here "device memory" is host
memory read through the pointers with ctypes; every call is recorded with its stream.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np

NCCL_INT32, NCCL_INT64, NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64 = 2, 4, 6, 7, 8
NCCL_SUM = 0
_DTYPES = {NCCL_INT32: np.int32, NCCL_INT64: np.int64, NCCL_FLOAT16: np.float16, NCCL_FLOAT32: np.float32,
           NCCL_FLOAT64: np.float64}


class _Group:
    def __init__(self, ndev: int) -> None:
        self.barrier = threading.Barrier(ndev, timeout=30)
        self.slots: list[Any] = [None] * ndev


class NcclModule:
    """One stand-in `nccl` module; `calls` records (rank, name, count, datatype, stream) in call order."""

    NCCL_INT32, NCCL_INT64, NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64 = (NCCL_INT32, NCCL_INT64, NCCL_FLOAT16,
                                                                       NCCL_FLOAT32, NCCL_FLOAT64)
    NCCL_SUM = NCCL_SUM

    def __init__(self) -> None:
        self.groups: dict[tuple, _Group] = {}
        self.lock = threading.Lock()
        self.calls: list[tuple] = []
        self.created: list[int] = []  # ranks, in the order their communicators were created
        self.ids = 0

    def get_unique_id(self) -> tuple:
        with self.lock:
            self.ids += 1
            return tuple([self.ids] + [0] * 127)

    def NcclCommunicator(self, ndev: int, commId: tuple, rank: int) -> _Comm:  # CuPy's name
        with self.lock:
            group = self.groups.setdefault(tuple(commId), _Group(ndev))
            self.created.append(rank)
        return _Comm(self, group, rank, ndev)


def _view(ptr: int, count: int, datatype: int) -> np.ndarray:
    dtype = np.dtype(_DTYPES[datatype])
    raw = (ctypes.c_char * (count * dtype.itemsize)).from_address(ptr)
    return np.frombuffer(raw, dtype=dtype, count=count)


class _Comm:
    def __init__(self, module: NcclModule, group: _Group, rank: int, ndev: int) -> None:
        self.module, self.group, self.rank, self.ndev = module, group, rank, ndev

    def _record(self, name: str, count: int, datatype: int, stream: int) -> None:
        with self.module.lock:
            self.module.calls.append((self.rank, name, count, datatype, stream))

    def _exchange(self, value: np.ndarray) -> list[np.ndarray]:
        self.group.slots[self.rank] = value.copy()
        self.group.barrier.wait()
        everyone = list(self.group.slots)
        self.group.barrier.wait()  # nobody overwrites a slot before all have read it
        return everyone

    def allReduce(self, sendbuf: int, recvbuf: int, count: int, datatype: int, op: int, stream: int) -> None:
        self._record("allReduce", count, datatype, stream)
        assert op == NCCL_SUM
        everyone = self._exchange(_view(sendbuf, count, datatype))
        _view(recvbuf, count, datatype)[...] = np.sum(everyone, axis=0)

    def allGather(self, sendbuf: int, recvbuf: int, count: int, datatype: int, stream: int) -> None:
        self._record("allGather", count, datatype, stream)
        everyone = self._exchange(_view(sendbuf, count, datatype))
        _view(recvbuf, count * self.ndev, datatype)[...] = np.concatenate(everyone)

    def bcast(self, buff: int, count: int, datatype: int, root: int, stream: int) -> None:
        self._record("bcast", count, datatype, stream)
        everyone = self._exchange(_view(buff, count, datatype))
        _view(buff, count, datatype)[...] = everyone[root]


class ThreadComm:
    """The few MPI calls the communicators make, for ranks that are threads (mpi4py's method names)."""

    def __init__(self, group: _Group, rank: int, size: int) -> None:
        self.group, self.rank, self.size = group, rank, size

    @classmethod
    def world(cls, size: int) -> list[ThreadComm]:
        group = _Group(size)
        return [cls(group, r, size) for r in range(size)]

    def Get_rank(self) -> int:
        return self.rank

    def Get_size(self) -> int:
        return self.size

    def Split_type(self, split_type: int, key: int = 0) -> ThreadComm:  # one host: the same group
        return self

    def Free(self) -> None:
        pass

    def _exchange(self, obj: Any) -> list[Any]:
        self.group.slots[self.rank] = obj
        self.group.barrier.wait()
        everyone = list(self.group.slots)
        self.group.barrier.wait()
        return everyone

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return self._exchange(obj)[root]

    def allgather(self, obj: Any) -> list[Any]:
        return self._exchange(obj)

    def Barrier(self) -> None:
        self._exchange(None)

    def Bcast(self, buf: np.ndarray, root: int = 0) -> None:
        buf[...] = self._exchange(buf.copy())[root]

    def Allreduce(self, sendbuf: Any, recvbuf: np.ndarray, op: Any) -> None:
        from mpi4py import MPI

        mine = recvbuf.copy() if sendbuf is MPI.IN_PLACE else np.array(sendbuf)
        everyone = self._exchange(mine)
        recvbuf[...] = np.max(everyone, axis=0) if op == MPI.MAX else np.sum(everyone, axis=0)


class DeviceArray(np.ndarray):
    """A NumPy array that shows a device pointer as CuPy's arrays do (`a.data.ptr`)."""

    @property
    def data(self) -> Any:  # type: ignore[override]
        return type("MemoryPointer", (), {"ptr": self.ctypes.data})()


class DeviceXp:
    """The array module whose `empty` the ordered reduction allocates its gather buffer with."""

    @staticmethod
    def empty(shape: Any, dtype: Any) -> DeviceArray:
        return np.zeros(shape, dtype=dtype).view(DeviceArray)


def device_array(values: Any, dtype: Any = np.float32) -> DeviceArray:
    return np.array(values, dtype=dtype).view(DeviceArray)
