"""A stand-in for the `cupy` module whose device work is skipped but counted.

Arrays track shape, dtype, strides and a fake device address, and nothing else: arithmetic,
products and kernels do no work. Every operation that on CuPy would reach the GPU is counted by
kind (kernel, cublas, memset, copy) following CuPy's documented rules (views cost nothing; an
elementwise op, a reduction, a fancy index or a non-contiguous copy launches one kernel; `zeros`
is an allocation plus a memset; `asarray` of a host array is one host-to-device copy), and every
host sync (`.get()`, `float()`, `int()`, `bool()`, `.item()`, `synchronize()`) is counted with the
dualnet function that asked for it. `install()` puts the module in `sys.modules["cupy"]`, so the
real backend, CupyOps, CupyLauncher and binding code run unchanged on top of it.

Values: a sync returns zeros, except that `all()` of anything is True and `any()` False, so the
training loop's finite checks pass.
"""

from __future__ import annotations

import collections
import contextlib
import sys
import types
from typing import Any

import numpy as np

_ALIGN = 512  # CuPy's memory pool rounds allocations up to 512 bytes


class Counter:
    """Device operations by kind and name, and host syncs by the dualnet function asking."""

    def __init__(self) -> None:
        self.ops: collections.Counter = collections.Counter()
        self.syncs: collections.Counter = collections.Counter()

    def op(self, kind: str, name: str) -> None:
        self.ops[(kind, name)] += 1

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
PROGRESS_FUNCTIONS = {("dualnet.train", "_report_progress")}


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


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


class _Flags:
    __slots__ = ("c_contiguous", "writeable")

    def __init__(self, c: bool) -> None:
        self.c_contiguous, self.writeable = c, True

    @property
    def f_contiguous(self) -> bool:
        return False


class _Mem:
    __slots__ = ("ptr",)

    def __init__(self, ptr: int) -> None:
        self.ptr = ptr


class _Dev:
    __slots__ = ("id",)

    def __init__(self, i: int) -> None:
        self.id = i

    def __enter__(self) -> _Dev:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def synchronize(self) -> None:
        COUNTER.sync("Device.synchronize")


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
        self.flags = _Flags(self.strides == c or self.size <= 1)

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
        COUNTER.op("kernel", name)
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
        COUNTER.op("kernel", name)
        if isinstance(other, ndarray):
            shape = np.broadcast_shapes(self.shape, other.shape)
            dt = dtype or np.result_type(self.dtype, other.dtype)
        else:
            if isinstance(other, np.ndarray):
                raise TypeError("stand-in cupy: a host array mixed into a device op")
            shape = self.shape
            dt = dtype or np.result_type(self.dtype, other)
        return ndarray(shape, dt)

    def _inplace(self, other: Any, name: str) -> ndarray:
        if isinstance(other, np.ndarray):
            raise TypeError("stand-in cupy: a host array mixed into a device op")
        COUNTER.op("kernel", name)
        return self

    def __add__(self, o: Any) -> ndarray:
        return self._binary(o, "add")

    __radd__ = __add__

    def __sub__(self, o: Any) -> ndarray:
        return self._binary(o, "subtract")

    __rsub__ = __sub__

    def __mul__(self, o: Any) -> ndarray:
        return self._binary(o, "multiply")

    __rmul__ = __mul__

    def __truediv__(self, o: Any) -> ndarray:
        return self._binary(o, "divide")

    __rtruediv__ = __truediv__

    def __floordiv__(self, o: Any) -> ndarray:
        return self._binary(o, "floor_divide")

    def __mod__(self, o: Any) -> ndarray:
        return self._binary(o, "remainder")

    def __pow__(self, o: Any) -> ndarray:
        return self._binary(o, "power")

    def __neg__(self) -> ndarray:
        return self._binary(0, "negative")

    def __invert__(self) -> ndarray:
        return self._binary(0, "invert")

    def __or__(self, o: Any) -> ndarray:
        return self._binary(o, "bitwise_or")

    def __and__(self, o: Any) -> ndarray:
        return self._binary(o, "bitwise_and")

    def __eq__(self, o: Any) -> ndarray:  # type: ignore[override]
        return self._binary(o, "equal", np.bool_)

    def __ne__(self, o: Any) -> ndarray:  # type: ignore[override]
        return self._binary(o, "not_equal", np.bool_)

    def __gt__(self, o: Any) -> ndarray:
        return self._binary(o, "greater", np.bool_)

    def __lt__(self, o: Any) -> ndarray:
        return self._binary(o, "less", np.bool_)

    def __ge__(self, o: Any) -> ndarray:
        return self._binary(o, "greater_equal", np.bool_)

    def __iadd__(self, o: Any) -> ndarray:
        return self._inplace(o, "add")

    def __isub__(self, o: Any) -> ndarray:
        return self._inplace(o, "subtract")

    def __imul__(self, o: Any) -> ndarray:
        return self._inplace(o, "multiply")

    def __itruediv__(self, o: Any) -> ndarray:
        return self._inplace(o, "divide")

    def __ior__(self, o: Any) -> ndarray:
        return self._inplace(o, "bitwise_or")

    __hash__ = None  # type: ignore[assignment]


def _copy(a: ndarray, name: str) -> ndarray:
    COUNTER.op("kernel", name)
    return ndarray(a.shape, a.dtype)


# --- module functions ----------------------------------------------------------------------

def empty(shape: Any, dtype: Any = np.float64, order: str = "C") -> ndarray:
    return ndarray(shape, dtype)


def empty_like(a: Any, dtype: Any = None) -> ndarray:
    return ndarray(a.shape, dtype or a.dtype)


def zeros(shape: Any, dtype: Any = np.float64, order: str = "C") -> ndarray:
    COUNTER.op("memset", "zeros")
    return ndarray(shape, dtype)


def zeros_like(a: Any, dtype: Any = None) -> ndarray:
    return zeros(a.shape, dtype or a.dtype)


def ones(shape: Any, dtype: Any = np.float64) -> ndarray:
    COUNTER.op("kernel", "fill")
    return ndarray(shape, dtype)


def full(shape: Any, fill_value: Any, dtype: Any = None) -> ndarray:
    COUNTER.op("kernel", "fill")
    return ndarray(shape, dtype or np.result_type(fill_value))


def asarray(a: Any, dtype: Any = None, order: Any = None) -> ndarray:
    if isinstance(a, ndarray):
        return a if dtype is None or np.dtype(dtype) == a.dtype else a.astype(dtype)
    host = np.asarray(a, dtype=dtype)
    COUNTER.op("copy", "host_to_device")
    return ndarray(host.shape, host.dtype, value=host.item() if host.size == 1 else None)


array = asarray


def ascontiguousarray(a: Any, dtype: Any = None) -> ndarray:
    if not isinstance(a, ndarray):
        return asarray(a, dtype)
    if a.flags.c_contiguous and (dtype is None or np.dtype(dtype) == a.dtype):
        return a
    return _copy(a, "ascontiguousarray")


def matmul(a: ndarray, b: ndarray, out: Any = None) -> ndarray:
    COUNTER.op("cublas", "matmul")
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    return out if out is not None else ndarray(shape, np.result_type(a.dtype, b.dtype))


def _unary(name: str, dtype: Any = None):
    def f(a: ndarray, out: Any = None) -> ndarray:
        COUNTER.op("kernel", name)
        return out if out is not None else ndarray(a.shape, dtype or a.dtype, value=True if dtype == np.bool_ else None)
    f.__name__ = name
    return f


isfinite = _unary("isfinite", np.bool_)
isnan = _unary("isnan", np.bool_)
sqrt, exp, log, tanh = _unary("sqrt"), _unary("exp"), _unary("log"), _unary("tanh")


def maximum(a: ndarray, b: Any, out: Any = None) -> ndarray:
    r = a._binary(b, "maximum")
    return out if out is not None else r


def arange(*args: Any, dtype: Any = None) -> ndarray:
    COUNTER.op("kernel", "arange")
    return ndarray(len(range(*[int(x) for x in args])), dtype or np.int64)


def take_along_axis(a: ndarray, idx: ndarray, axis: int) -> ndarray:
    COUNTER.op("kernel", "take_along_axis")
    return ndarray(idx.shape, a.dtype)


def concatenate(arrays: Any, axis: int = 0) -> ndarray:
    arrays = list(arrays)
    COUNTER.op("kernel", "concatenate")
    shape = list(arrays[0].shape)
    shape[axis] = sum(x.shape[axis] for x in arrays)
    return ndarray(tuple(shape), arrays[0].dtype)


def copyto(dst: ndarray, src: Any) -> None:
    if isinstance(src, np.ndarray):
        COUNTER.op("copy", "host_to_device")
    COUNTER.op("kernel", "copyto")


def get_array_module(*arrays: Any) -> Any:
    return sys.modules[__name__]


# --- cuda, kernels, cuBLAS -----------------------------------------------------------------

class _NoopKernel:
    """A compiled kernel: calling it launches nothing and counts one launch."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, grid: Any, block: Any, args: Any, **kw: Any) -> None:
        COUNTER.op("kernel", "dualnet:" + self.name.split("<")[0])


class RawModule:
    compiles = 0

    def __init__(self, code: str = "", options: Any = (), name_expressions: Any = (), **kw: Any) -> None:
        RawModule.compiles += 1
        self.names = list(name_expressions)

    def get_function(self, name: str) -> _NoopKernel:
        return _NoopKernel(name)


class CompileException(Exception):
    def get_message(self) -> str:
        return str(self)


class OutOfMemoryError(MemoryError):
    pass


class _Runtime:
    @staticmethod
    def getDeviceCount() -> int:  # noqa: N802 - CuPy's name
        return 1

    @staticmethod
    def getDeviceProperties(i: int) -> dict:  # noqa: N802
        return {"name": b"stand-in (no device work)", "major": 9, "minor": 0}

    @staticmethod
    def runtimeGetVersion() -> int:  # noqa: N802
        return 13000

    @staticmethod
    def driverGetVersion() -> int:  # noqa: N802
        return 13000


class _Pool:
    def used_bytes(self) -> int:
        return 0

    def total_bytes(self) -> int:
        return 0

    def free_all_blocks(self) -> None:
        return None


_POOL = _Pool()


def _device(i: int = 0) -> _Dev:
    return _DEVICE0 if i == 0 else _Dev(i)


cuda = types.SimpleNamespace(
    Device=_device, runtime=_Runtime(), compiler=types.SimpleNamespace(CompileException=CompileException),
    memory=types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError),
    get_current_stream=lambda: types.SimpleNamespace(synchronize=lambda: COUNTER.sync("stream.synchronize")),
    Stream=contextlib.nullcontext,
)


def get_default_memory_pool() -> _Pool:
    return _POOL


float16, float32, float64 = np.float16, np.float32, np.float64
int8, int32, int64, uint8, bool_ = np.int8, np.int32, np.int64, np.uint8, np.bool_
inf, nan, newaxis = np.inf, np.nan, None
__version__ = "stand-in"


def install() -> types.ModuleType:
    """Make `import cupy` return this module (for this process); returns it."""
    mod = sys.modules[__name__]
    sys.modules["cupy"] = mod
    return mod
