"""The stand-in cupy's array: shape, dtype, strides and a fake device address, no data; and the
counter of device operations and host syncs every stand-in call reports to (see counting_cupy.py).
"""

from __future__ import annotations

import collections
import sys
from typing import Any

import numpy as np

from dualnet.emu_array import COMPARISONS, define_operators

from .cuda_devices import CurrentDevice

_ALIGN = 512  # CuPy's memory pool rounds allocations up to 512 bytes


class Counter:
    """Device operations by kind and name, and host syncs by the dualnet function asking."""

    def __init__(self) -> None:
        self.ops: collections.Counter = collections.Counter()
        self.syncs: collections.Counter = collections.Counter()
        #: when a list: every operation in order, (kind, name, bytes it moves, details) (the kernel report)
        self.trace: list[tuple[str, str, int, dict]] | None = None

    def op(self, kind: str, name: str, nbytes: int = 0, **detail: Any) -> None:
        self.ops[(kind, name)] += 1
        if self.trace is not None:
            self.trace.append((kind, name, nbytes, detail))

    def sync(self, what: str) -> None:
        self.syncs[(_caller(), what)] += 1

    def total_ops(self) -> int:
        return sum(self.ops.values())

    def total_syncs(self) -> int:
        return sum(self.syncs.values())

    def snapshot(self) -> tuple[collections.Counter, collections.Counter]:
        return collections.Counter(self.ops), collections.Counter(self.syncs)

    def reset(self) -> None:
        self.ops.clear()
        self.syncs.clear()


COUNTER = Counter()


#: functions that mark a sync as progress reporting when they are anywhere on the stack
PROGRESS_FUNCTIONS = {("dualnet.train.progress", "after_step")}


def _caller() -> str:
    """The innermost dualnet function on the stack ("module:function"), with " [progress]" when a
    progress-reporting function is further out."""
    f = sys._getframe(2)
    inner = None
    while f is not None:
        name = f.f_globals.get("__name__", "")
        if name.startswith("dualnet"):
            if inner is None:
                inner = f"{name}:{f.f_code.co_name}"
            if (name, f.f_code.co_name) in PROGRESS_FUNCTIONS:
                return f"{inner} [progress]"
        f = f.f_back
    return inner or "<outside dualnet>"


_next_ptr = [1 << 32]


def _alloc(nbytes: int) -> int:
    ptr = _next_ptr[0]
    _next_ptr[0] += -(-max(nbytes, 1) // _ALIGN) * _ALIGN
    return ptr


def _c_strides(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    strides, acc = [], itemsize
    for d in reversed(shape):
        strides.append(acc)
        acc *= max(d, 1)
    return tuple(reversed(strides))


def _same_strides(strides: tuple[int, ...], want: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    """Strides equal where they matter (CuPy ignores the stride of a dimension of size 1)."""
    return all(d == 1 or s == w for s, w, d in zip(strides, want, shape))


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


class _Flags:
    __slots__ = ("c_contiguous", "f_contiguous", "writeable")

    def __init__(self, c: bool, f: bool = False) -> None:
        self.c_contiguous, self.f_contiguous, self.writeable = c, f, True


class _Mem:
    __slots__ = ("ptr",)

    def __init__(self, ptr: int) -> None:
        self.ptr = ptr


#: one device, current on every thread (CuPy's rule: standins.cuda_devices)
_Dev = CurrentDevice(1, lambda n, count: RuntimeError(f"cudaErrorInvalidDevice: device {n} of {count}")).device_class(
    synchronize=lambda: COUNTER.sync("Device.synchronize"))


_DEVICE0 = _Dev(0)


def _norm_shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


class ndarray:  # noqa: N801 - CuPy's name
    """Shape, dtype, strides and a fake address; no data."""

    __slots__ = ("shape", "dtype", "strides", "size", "ptr", "_value", "flags", "__weakref__")
    __array_priority__ = 100

    def __init__(self, shape: Any, dtype: Any = np.float32, strides: Any = None, ptr: int | None = None,
                 value: Any = None) -> None:
        shape = _norm_shape(shape)
        self.shape = shape
        self.dtype = dt = np.dtype(dtype)
        self.size = _prod(shape)
        c = _c_strides(shape, dt.itemsize)
        self.strides = c if strides is None else tuple(strides)
        self.ptr = _alloc(self.size * dt.itemsize) if ptr is None else ptr
        self._value = value
        f = tuple(reversed(_c_strides(tuple(reversed(shape)), dt.itemsize)))
        small = self.size <= 1
        self.flags = _Flags(small or _same_strides(self.strides, c, shape),
                            small or _same_strides(self.strides, f, shape))

    # --- attributes ---
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def data(self) -> _Mem:
        return _Mem(self.ptr)

    @property
    def device(self) -> _Dev:
        return _DEVICE0

    @property
    def __cuda_array_interface__(self) -> dict:
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.ptr, False),
                "strides": None if self.flags.c_contiguous else self.strides, "version": 3}

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"standin.ndarray(shape={self.shape}, dtype={self.dtype})"

    # --- host conversion: syncs (implicit conversion refused, as CuPy does) ---
    def __array__(self, *a: Any, **k: Any) -> Any:
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()`")

    def get(self, stream: Any = None) -> np.ndarray:
        COUNTER.op("copy", "device_to_host")
        COUNTER.sync("get")
        return np.zeros(self.shape, self.dtype)

    def _scalar(self, what: str) -> Any:
        COUNTER.op("copy", "device_to_host")
        COUNTER.sync(what)
        return 0 if self._value is None else self._value

    def __float__(self) -> float:
        return float(self._scalar("float"))

    def __int__(self) -> int:
        return int(self._scalar("int"))

    def __bool__(self) -> bool:
        return bool(self._scalar("bool"))

    def item(self) -> Any:
        return self._scalar("item")

    def tolist(self) -> Any:
        return self.get().tolist()

    # --- views ---
    def _view(self, shape: tuple[int, ...], strides: tuple[int, ...], offset: int = 0) -> ndarray:
        return ndarray(shape, self.dtype, strides, self.ptr + offset)

    def reshape(self, *shape: Any, order: str = "C") -> ndarray:
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        shape = tuple(int(s) for s in shape)
        if -1 in shape:
            known = _prod(tuple(s for s in shape if s != -1))
            shape = tuple(self.size // max(known, 1) if s == -1 else s for s in shape)
        if _prod(shape) != self.size:
            raise ValueError(f"cannot reshape array of size {self.size} into shape {shape}")
        src = self if self.flags.c_contiguous else _copy(self, "reshape_copy")
        return src._view(shape, _c_strides(shape, self.dtype.itemsize))

    def ravel(self) -> ndarray:
        return self.reshape(-1)

    def transpose(self, *axes: Any) -> ndarray:
        if not axes:
            axes = tuple(reversed(range(self.ndim)))
        elif len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = tuple(axes[0])
        return self._view(tuple(self.shape[a] for a in axes), tuple(self.strides[a] for a in axes))

    @property
    def T(self) -> ndarray:  # noqa: N802
        return self.transpose()

    def view(self, dtype: Any = None) -> ndarray:
        return self._view(self.shape, self.strides) if dtype is None else ndarray(self.shape, dtype, None, self.ptr)

    def __getitem__(self, key: Any) -> ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        if any(isinstance(k, (ndarray, np.ndarray, list)) for k in key):
            idx = next(k for k in key if isinstance(k, (ndarray, np.ndarray, list)))
            if not isinstance(idx, ndarray):
                COUNTER.op("copy", "host_to_device")
            COUNTER.op("kernel", "take")
            ishape = np.shape(idx) if not isinstance(idx, ndarray) else idx.shape
            return ndarray(tuple(ishape) + self.shape[1:], self.dtype)
        shape, strides, offset, dim = [], [], 0, 0
        for k in key:
            if k is Ellipsis:
                rest = self.ndim - dim - (len(key) - 1 - key.index(Ellipsis))
                for _ in range(rest):
                    shape.append(self.shape[dim])
                    strides.append(self.strides[dim])
                    dim += 1
            elif k is None:
                shape.append(1)
                strides.append(0)
            elif isinstance(k, slice):
                start, stop, step = k.indices(self.shape[dim])
                shape.append(len(range(start, stop, step)))
                strides.append(self.strides[dim] * step)
                offset += start * self.strides[dim]
                dim += 1
            else:
                i = int(k)
                offset += (i + self.shape[dim] if i < 0 else i) * self.strides[dim]
                dim += 1
        shape += self.shape[dim:]
        strides += self.strides[dim:]
        return self._view(tuple(shape), tuple(strides), offset)

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, np.ndarray):
            COUNTER.op("copy", "host_to_device")
        COUNTER.op("kernel", "setitem")

    # --- copies and casts ---
    def copy(self, order: str = "C") -> ndarray:
        return _copy(self, "copy")

    def astype(self, dtype: Any, copy: bool = True, order: str = "C") -> ndarray:
        if np.dtype(dtype) == self.dtype and not copy:
            return self
        COUNTER.op("kernel", "astype")
        return ndarray(self.shape, dtype)

    def fill(self, value: Any) -> None:
        COUNTER.op("memset" if value == 0 else "kernel", "fill")

    # --- reductions ---
    def _reduce(self, name: str, axis: Any = None, keepdims: bool = False, dtype: Any = None,
                value: Any = 0) -> ndarray:
        COUNTER.op("kernel", name, self.nbytes, shape=self.shape)
        if axis is None:
            shape: tuple[int, ...] = tuple(1 for _ in self.shape) if keepdims else ()
        else:
            axes = {a % self.ndim for a in ((axis,) if isinstance(axis, int) else axis)}
            shape = tuple(1 if i in axes else d for i, d in enumerate(self.shape) if keepdims or i not in axes)
        return ndarray(shape, dtype or self.dtype, value=value)

    def sum(self, axis: Any = None, dtype: Any = None, keepdims: bool = False, out: Any = None) -> ndarray:
        dt = dtype or (np.int64 if self.dtype.kind in "biu" else self.dtype)
        return self._reduce("sum", axis, keepdims, dt)

    def mean(self, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> ndarray:
        return self._reduce("mean", axis, keepdims, dtype)

    def max(self, axis: Any = None, keepdims: bool = False) -> ndarray:
        return self._reduce("max", axis, keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> ndarray:
        return self._reduce("min", axis, keepdims)

    def argmax(self, axis: Any = None) -> ndarray:
        return self._reduce("argmax", axis, False, np.int64)

    def all(self, axis: Any = None, keepdims: bool = False) -> ndarray:
        return self._reduce("all", axis, keepdims, np.bool_, value=True)

    def any(self, axis: Any = None, keepdims: bool = False) -> ndarray:
        return self._reduce("any", axis, keepdims, np.bool_, value=False)

    # --- elementwise ---
    def _binary(self, other: Any, name: str, dtype: Any = None) -> ndarray:
        if isinstance(other, ndarray):
            shape = np.broadcast_shapes(self.shape, other.shape)
            dt = dtype or np.result_type(self.dtype, other.dtype)
            moved = self.nbytes + other.nbytes
        else:
            if isinstance(other, np.ndarray):
                raise TypeError("stand-in cupy: a host array mixed into a device op")
            shape = self.shape
            dt = dtype or np.result_type(self.dtype, other)
            moved = self.nbytes
        out = ndarray(shape, dt)
        COUNTER.op("kernel", name, moved + out.nbytes, shape=shape)
        return out

    def _inplace(self, other: Any, name: str) -> ndarray:
        if isinstance(other, np.ndarray):
            raise TypeError("stand-in cupy: a host array mixed into a device op")
        COUNTER.op("kernel", name, 2 * self.nbytes + getattr(other, "nbytes", 0), shape=self.shape)
        return self

    __hash__ = None  # type: ignore[assignment]


def _binary(fn: Any, reflected: bool, name: str) -> Any:
    if fn in (np.matmul, np.divmod):
        return None  # not modelled: dualnet calls xp.matmul, which the module counts
    dtype = np.bool_ if fn in COMPARISONS.values() else None
    return lambda self, o: self._binary(o, fn.__name__, dtype)


define_operators(ndarray, _binary, lambda fn, name: (lambda self, o: self._inplace(o, fn.__name__)),
                 lambda fn, name: (lambda self: self._binary(0, fn.__name__)))


def _copy(a: ndarray, name: str) -> ndarray:
    COUNTER.op("kernel", name, 2 * a.nbytes, shape=a.shape)
    return ndarray(a.shape, a.dtype)
