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

import contextlib
import sys
import types
from typing import Any

import numpy as np

from .counting_array import _DEVICE0, COUNTER, Counter, _copy, _Dev, ndarray  # noqa: F401

# --- module functions ----------------------------------------------------------------------

def empty(shape: Any, dtype: Any = np.float64, order: str = "C") -> ndarray:
    return ndarray(shape, dtype)


def empty_like(a: Any, dtype: Any = None) -> ndarray:
    return ndarray(a.shape, dtype or a.dtype)


def zeros(shape: Any, dtype: Any = np.float64, order: str = "C") -> ndarray:
    out = ndarray(shape, dtype)
    COUNTER.op("memset", "zeros", out.nbytes, shape=out.shape)
    return out


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
    """One cuBLAS call, and the copies CuPy 14 makes inside matmul without being asked (hidden copies,
    counted as kind "hidden_copy"; cupy/_core/_routines_linalg.pyx): a 2-D operand that is neither C-
    nor F-contiguous is copied (cuBLAS reads a transposed view through its transpose flag); in the
    batched path (3-D and more) every operand that is not C-contiguous is copied, a broadcast batch
    builds pointer arrays (3 kernels), and TF32 is never used. The compute type is recorded in the
    call's name: matmul[fp32], matmul[tf32], matmul[fp64], matmul_batched[...]."""
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    dtype = np.result_type(a.dtype, b.dtype)
    batched = max(a.ndim, b.ndim) > 2
    for x in (a, b):
        if not (x.flags.c_contiguous or (not batched and x.flags.f_contiguous)):
            COUNTER.op("hidden_copy", "matmul_batched" if batched else "matmul", 2 * x.nbytes, shape=x.shape)
    if batched and a.shape[:-2] != b.shape[:-2]:
        for _ in range(3):
            COUNTER.op("kernel", "cupy_mat_ptrs")
    if dtype == np.float64:
        kind = "fp64"
    else:
        kind = "tf32" if not batched and _linalg.get_compute_type(np.float32) == _linalg.COMPUTE_TYPE_TF32 else "fp32"
    COUNTER.op("cublas", f"{'matmul_batched' if batched else 'matmul'}[{kind}]",
               (a.size + b.size + int(np.prod(shape))) * dtype.itemsize, a=a.shape, b=b.shape, out=shape,
               dtype=dtype, compute=kind)
    if out is not None and not out.flags.c_contiguous:
        COUNTER.op("hidden_copy", "matmul_out")
    return out if out is not None else ndarray(shape, dtype)


def _gemm(transa: str, transb: str, a: ndarray, b: ndarray, out: Any = None, alpha: float = 1.0,
          beta: float = 0.0) -> ndarray:
    """cupy.cublas.gemm: out = alpha * op(a) @ op(b) + beta * out, one cuBLAS call (cublas<t>gemm, no
    TF32 unless the handle's math mode asks; not modelled). 2-D operands that are C- or F-contiguous
    are read through the transpose flags; anything else is copied (a hidden copy), as CuPy does."""
    m = a.shape[0] if transa == "N" else a.shape[1]
    n = b.shape[1] if transb == "N" else b.shape[0]
    for x in (a, b):
        if not (x.flags.c_contiguous or x.flags.f_contiguous):
            COUNTER.op("hidden_copy", "gemm", 2 * x.nbytes, shape=x.shape)
    if out is not None and not (out.flags.c_contiguous or out.flags.f_contiguous):
        COUNTER.op("hidden_copy", "gemm_out")
    dtype = a.dtype
    kind = "fp64" if dtype == np.float64 else ("tf32" if _CUBLAS_LIB.mode == _CUBLAS_LIB.TF32_MATH else "fp32")
    shape_a = a.shape if transa == "N" else a.shape[::-1]
    shape_b = b.shape if transb == "N" else b.shape[::-1]
    COUNTER.op("cublas", f"gemm[{kind}]", (a.size + b.size + (2 if beta else 1) * m * n) * dtype.itemsize,
               a=shape_a, b=shape_b, out=(m, n), dtype=dtype, compute=kind, beta=beta)
    return out if out is not None else ndarray((m, n), dtype)


class _CublasLib:
    """cupy_backends.cuda.libs.cublas's math-mode calls on the one stand-in handle (cublas<t>gemm
    uses TF32 only when the handle's math mode is CUBLAS_TF32_TENSOR_OP_MATH, 3)."""

    CUBLAS_DEFAULT_MATH, TF32_MATH = 0, 3

    def __init__(self) -> None:
        self.mode = self.CUBLAS_DEFAULT_MATH

    def getMathMode(self, handle: int) -> int:  # noqa: N802 - cuBLAS's name
        return self.mode

    def setMathMode(self, handle: int, mode: int) -> None:  # noqa: N802
        self.mode = mode


_CUBLAS_LIB = _CublasLib()
#: cupy.cublas (its gemm), and `lib`: what dualnet would import from cupy_backends on a real machine
cublas = types.SimpleNamespace(gemm=_gemm, lib=_CUBLAS_LIB)


class _Linalg:
    """cupy._core._routines_linalg's compute-type switch: float32 products use TF32 when set (or when
    CUPY_TF32=1 was in the environment at the first product), as in CuPy."""

    COMPUTE_TYPE_TBD, COMPUTE_TYPE_DEFAULT, COMPUTE_TYPE_TF32 = 0, 1, 7

    def __init__(self) -> None:
        self.types: dict[np.dtype, int] = {}

    def get_compute_type(self, dtype: Any) -> int:
        dt = np.dtype(dtype)
        if dt not in self.types:
            import os
            tf32 = dt == np.float32 and int(os.environ.get("CUPY_TF32", "0")) > 0
            self.types[dt] = self.COMPUTE_TYPE_TF32 if tf32 else self.COMPUTE_TYPE_DEFAULT
        return self.types[dt]

    def set_compute_type(self, dtype: Any, compute_type: int) -> None:
        self.types[np.dtype(dtype)] = compute_type


_linalg = _Linalg()
_core = types.SimpleNamespace(_routines_linalg=_linalg)


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

    def __call__(self, grid: Any, block: Any, args: Any, shared_mem: int = 0, **kw: Any) -> None:
        COUNTER.op("kernel", "dualnet:" + self.name.split("<")[0], 0, instantiation=self.name, grid=tuple(grid),
                   block=tuple(block), shared_mem=int(shared_mem), args=tuple(args))


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
    Device=_device, runtime=_Runtime(), device=types.SimpleNamespace(get_cublas_handle=lambda: 0),
    compiler=types.SimpleNamespace(CompileException=CompileException),
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
