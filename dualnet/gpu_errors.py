"""CUDA-side failures during a run, as one line a CLI user can act on.

CuPy raises its own exception types (CUDARuntimeError, CUBLASError, CompileException,
OutOfMemoryError) and plain RuntimeError/ImportError when a CUDA library cannot be loaded on
first use (NVRTC, cuBLAS, the CUDA headers). `describe(exc)` recognises them without importing
CuPy: only a CuPy that is already loaded can have raised them, so a run on the CPU never pays
for the import, and returns None for anything else (a bug keeps its traceback).
"""

from __future__ import annotations

import re
import sys
from typing import Any

__all__ = ["describe", "is_cuda_failure"]

#: (module, class name) of CuPy's exception types, as CuPy 14 defines them
_CUPY_TYPES = {
    ("cupy_backends.cuda.api.runtime", "CUDARuntimeError"): "CUDA runtime error",
    ("cupy_backends.cuda.api.driver", "CUDADriverError"): "CUDA driver error",
    ("cupy_backends.cuda.libs.cublas", "CUBLASError"): "cuBLAS error",
    ("cupy.cuda.compiler", "CompileException"): "a CUDA kernel failed to compile",
    ("cupy.cuda.memory", "OutOfMemoryError"): "out of GPU memory",
}

#: words of CuPy's and cuda-pathfinder's library-load failures
_LIBRARY = re.compile(r"libnvrtc|libcublas|libcudart|libcurand|libcusparse|libcufft|libnvJitLink|nvrtc|cublas|"
                      r"CUDA headers|CUDA_PATH|cuda_fp16|DynamicLibNotFound", re.IGNORECASE)

_FIX = "run `dualnet devices` to see what is missing and how to install it (pip install 'dualnet[gpu]')"


def _kind(exc: BaseException) -> str | None:
    if "cupy" not in sys.modules or type(exc).__module__.startswith("dualnet"):
        return None  # dualnet's own errors already explain themselves
    for cls in type(exc).__mro__:
        kind = _CUPY_TYPES.get((cls.__module__, cls.__name__))
        if kind is not None:
            return kind
    if isinstance(exc, (RuntimeError, ImportError)) and (_LIBRARY.search(str(exc)) or _raised_in_cupy(exc)):
        return "a CUDA library cannot be loaded"
    return None


def _raised_in_cupy(exc: BaseException) -> bool:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last is not None and bool(re.search(r"[\\/](cupy|cupy_backends|cuda[\\/]pathfinder)[\\/]", last))


def is_cuda_failure(exc: BaseException) -> bool:
    """Whether `exc` came from CUDA (through a loaded CuPy)."""
    return _kind(exc) is not None


def _memory_pool() -> str:
    """Free CuPy's cached blocks, then say what the pool still holds ("" when it held nothing,
    as after a run on the CPU, or cannot be asked)."""
    cupy: Any = sys.modules.get("cupy")
    try:
        pool = cupy.get_default_memory_pool()
        held = int(pool.total_bytes())
        pool.free_all_blocks()
        used, total = int(pool.used_bytes()), int(pool.total_bytes())
    except Exception:  # the report is best effort: the error itself is the message
        return ""
    if not held:
        return ""
    return f"; after freeing cached blocks the GPU memory pool uses {used:,} of the {total:,} bytes it holds"


def _oneline(text: object) -> str:
    return " ".join(str(text).split())


def describe(exc: BaseException) -> str | None:
    """One line for a CUDA-side failure, or None if `exc` is not one.

    Out of GPU memory (CuPy's OutOfMemoryError, or dualnet's DeviceOutOfMemory while CuPy is
    loaded) frees the pool first and reports its used/total bytes.
    """
    kind = _kind(exc)
    oom = kind == "out of GPU memory" or (type(exc).__name__ == "DeviceOutOfMemory" and "cupy" in sys.modules)
    if oom:
        if kind is None:  # DeviceOutOfMemory says it all, batch size included
            return f"{_oneline(exc)}{_memory_pool()}"
        return f"out of GPU memory ({_oneline(exc)}): try a smaller `batch_size`{_memory_pool()}"
    if kind is None:
        return None
    detail = _oneline(exc)
    if kind.startswith("a CUDA kernel"):
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return f"{kind} (CompileException: {lines[0] if lines else ''}); {_FIX}"
    return f"{kind} ({type(exc).__name__}: {detail}); {_FIX}"
