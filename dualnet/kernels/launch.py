"""Typed launcher of the CUDA kernels through CuPy.

    launcher = CupyLauncher(device_id=0)
    launcher.launch("im2col", np.float32, x, cols, n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw,
                    out_h, out_w)

``launch(name, dtype, *args)``: ``name`` is a kernel of the table (``signatures.KERNELS``),
``dtype`` picks the instantiation (np.float32 -> ``name<float>``, np.float64 -> ``name<double>``),
``args`` follow the declared C signature in order.  Arrays must be C-contiguous ``cupy.ndarray``s
on this launcher's device with exactly the declared dtype and element count; Python ints and floats
are cast to the declared width (range-checked); NumPy scalars must already have the exact declared
type.  See ``binding.bind`` (shared with the emulator).

Each source file is compiled once per (device, source text), lazily, by ``cupy.RawModule`` with
every instantiation of the table as a name expression.  CuPy is imported on first use only.

The hot path costs a few microseconds of Python per launch: each (kernel, dtype) is looked up once
per launcher (its compiled function and a ``binding.FastPlan`` of precomputed parameter metadata),
the source is read and hashed once per process, and scalars are cast with plain comparisons.  The
full argument checks, aliasing included, run when ``debug=True`` or ``DUALNET_DEBUG_KERNELS=1``
(and always in the emulator).
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

from dualnet.errors import DeviceMismatchError, DeviceUnavailableError

from .binding import FastPlan, bind, check_launch_config, launch_shape
from .errors import KernelCompileError
from .signatures import KERNELS, KernelTable

#: NVRTC's options, here and in CI's compile check (nvrtc_check.py). --fmad=false: no fused
#: multiply-adds, as the emulator's g++ (-ffp-contract=off), so the GPU rounds every product and sum
#: as the emulator and the reference do and float64 agreement is exact where the order is
NVRTC_OPTIONS = ("--std=c++14", "--fmad=false")

_MODULES: dict[tuple[int, str, str], dict[str, Any]] = {}
_SOURCE_KEYS: dict[str, tuple[str, str]] = {}  # source path -> (text, sha256): read once per process
_LOCK = threading.Lock()


def debug_default() -> bool:
    """Full argument checks on every launch: ``DUALNET_DEBUG_KERNELS=1``."""
    return os.environ.get("DUALNET_DEBUG_KERNELS", "") not in ("", "0")


def _cupy() -> Any:
    try:
        import cupy
    except ImportError as e:
        raise DeviceUnavailableError(
            f"CuPy cannot be imported ({e}); install it with pip install cupy-cuda12x") from e
    return cupy


class CupyLauncher:
    """Launch the kernels on CUDA device ``device_id`` through CuPy."""

    def __init__(self, device_id: int = 0, block: int = 256, max_blocks: int = 65535,
                 table: KernelTable | None = None, debug: bool | None = None) -> None:
        check_launch_config(block, max_blocks)
        self.device_id, self.block, self.max_blocks = int(device_id), block, max_blocks
        self.table = KERNELS if table is None else table
        self.debug = debug_default() if debug is None else bool(debug)
        # (kernel name, dtype) -> (plan, kernel function, the CUDA device context, cupy.ndarray)
        self._hot: dict[tuple[str, Any], tuple[FastPlan, Any, Any, type]] = {}

    def __repr__(self) -> str:
        return (f"CupyLauncher(device_id={self.device_id}, block={self.block}, "
                f"max_blocks={self.max_blocks})")

    def functions(self, source: str) -> dict[str, Any]:
        """Compile ``source`` for this device (once) and return {instantiation: RawKernel}."""
        path = str(self.table.source_path(source))
        known = _SOURCE_KEYS.get(path)
        if known is None:
            code = self.table.read_source(source)
            known = _SOURCE_KEYS[path] = (code, hashlib.sha256(code.encode()).hexdigest())
        code = known[0]
        key = (self.device_id, path, known[1])
        with _LOCK:
            if key not in _MODULES:
                _MODULES[key] = self._compile(source, code)
            return _MODULES[key]

    def _compile(self, source: str, code: str) -> dict[str, Any]:
        cp = _cupy()
        names = self.table.name_expressions(source)
        path = self.table.source_path(source)
        try:
            with cp.cuda.Device(self.device_id):
                module = cp.RawModule(code=code, options=NVRTC_OPTIONS, name_expressions=names)
                return {name: module.get_function(name) for name in names}
        except cp.cuda.compiler.CompileException as e:
            raise KernelCompileError(f"NVRTC failed to compile {path.name} ({path}) for device "
                                     f"{self.device_id}:\n{e.get_message()}") from e

    def compile_all(self) -> None:
        """Compile every source of the table now instead of on first use."""
        for source in self.table.sources():
            self.functions(source)

    def kernel_function(self, name: str, dtype: Any) -> Any:
        """The compiled function of one instantiation (compiled on first use)."""
        return self._entry(name, dtype)[1]

    def _entry(self, name: str, dtype: Any) -> tuple[FastPlan, Any, Any, type]:
        entry = self._hot.get((name, dtype))
        if entry is None:
            cp = _cupy()
            kernel = self.table[name]
            plan = FastPlan(kernel, dtype)
            fn = self.functions(kernel.source)[kernel.name_expression(plan.t)]
            entry = self._hot[(name, dtype)] = (plan, fn, cp.cuda.Device(self.device_id), cp.ndarray)
        return entry

    def launch(self, name: str, dtype: Any, *args: Any) -> None:
        """Run kernel ``name`` instantiated for ``dtype`` on ``args`` (see the module docstring)."""
        if self.debug:
            return self._launch_checked(name, dtype, args)
        plan, fn, device, array_type = self._entry(name, dtype)
        values, size = plan.bind(args, array_type, "cupy")
        me = self.device_id
        for i, _ in plan.arrays:
            if values[i].device.id != me:
                return self._launch_checked(name, dtype, args)  # raises, naming the parameter
        grid: tuple[int, ...]
        if plan.block:  # cooperative: the declared block and grid
            grid, block = plan.grid(args), plan.block
            if 0 in grid:
                return None
        else:
            blocks = min(-(-size // self.block), self.max_blocks)
            if not blocks:
                return None
            grid, block = (blocks,), self.block
        with device:
            fn(grid, (block,), tuple(values))
        return None

    def _launch_checked(self, name: str, dtype: Any, args: tuple) -> None:
        cp = _cupy()
        kernel = self.table[name]
        bound = bind(kernel, dtype, args, cp.ndarray, "cupy")
        for p, v in zip(kernel.params, bound.values):
            if p.is_pointer and v.device.id != self.device_id:
                raise DeviceMismatchError(
                    f"kernel {bound.instantiation}, parameter {p.name}: array is on gpu:"
                    f"{v.device.id} but this launcher runs on gpu:{self.device_id}")
        fn = self.functions(kernel.source)[bound.instantiation]
        grid, block = launch_shape(kernel, bound.scalars, bound.size, self.block, self.max_blocks)
        if 0 in grid:
            return
        with cp.cuda.Device(self.device_id):
            fn(grid if kernel.cooperative else grid[:1], (block,), tuple(bound.values))
