"""Run the CUDA kernel sources on the CPU: g++ + a tiny CUDA header + generated wrappers.

Each ``.cu`` file is compiled with ``g++ -O2 -shared -fPIC`` under ``emulator.h`` together with one
generated ``extern "C"`` wrapper per instantiation (from the signature table) that unpacks the
arguments from a ``void**`` array (one pointer to each argument's value, like ``cuLaunchKernel``)
and hands the kernel call to ``dn::run_grid``: every block in turn, its threads one after another
(grid-stride kernels) or as fibers on this OS thread (cooperative kernels, declared with a block:
shared memory, barriers, warp shuffles). The wrappers are called through ctypes. Compiled
libraries are cached on disk by a hash of everything that went into them.

    emu = EmulatorLauncher(check=True)
    emu.launch("relu_backward", np.float32, dy, y, dx, dy.size)

CUDA's rules (barriers every thread reaches, shared bounds, 48 KiB of shared memory, launch
limits) are enforced on every launch: KernelCheckError / KernelLaunchError name the kernel.
``check=True`` adds guard zones, unwritten-output and modified-input detection and the race
check: every launch runs under several schedules whose outputs must agree bit for bit
(``emulator_check``; docs/gpu-emulator.md).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..emu_array import EmuArray, unwrap
from .binding import Bound, bind, check_launch_config, launch_shape
from .errors import EmulatorUnavailableError, KernelArgTypeError, KernelCheckError, KernelCompileError
from .signatures import KERNELS, Kernel, KernelTable

#: the emulator's CUDA surface, then its block scheduler: compiled ahead of every kernel source
HEADERS = tuple(Path(__file__).resolve().parent / name for name in ("emulator.h", "emulator_scheduler.h"))
CXX_FLAGS = ("-O2", "-shared", "-fPIC", "-std=c++14", "-ffp-contract=off", "-Wall")

#: number of compiler runs / disk-cache hits in this process (tests read these)
stats = {"compiles": 0, "disk_hits": 0}

#: thread orders of emulator.h (dn::Schedule)
IN_ORDER, REVERSED, RANDOM = 0, 1, 2
_ERRLEN = 1024
_CTYPES = {"int": ctypes.c_int32, "long long": ctypes.c_int64, "float": ctypes.c_float,
           "double": ctypes.c_double}


def compiler() -> str:
    """The C++ compiler the emulator runs: ``$DUALNET_CXX`` or ``g++``."""
    return os.environ.get("DUALNET_CXX") or "g++"


def emulator_available() -> tuple[bool, str]:
    """(True, "") when the emulator can compile kernels here, else (False, why and how to fix)."""
    cxx = compiler()
    if shutil.which(cxx) is None:
        return False, (f"{cxx} not found on PATH; install g++ (apt-get install g++) or set "
                       "DUALNET_CXX to a C++14 compiler")
    return True, ""


def default_cache_dir() -> Path:
    """``$DUALNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/dualnet/emu``, else ``~/.cache/dualnet/emu``."""
    if os.environ.get("DUALNET_CACHE_DIR"):
        return Path(os.environ["DUALNET_CACHE_DIR"])
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "dualnet" / "emu"


@cache
def _compiler_identity(cxx: str) -> str:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60)
    except OSError as e:
        raise EmulatorUnavailableError(f"cannot run {cxx}: {e}; install g++ (apt-get install "
                                       "g++) or set DUALNET_CXX") from e
    return (shutil.which(cxx) or cxx) + "\n" + out.stdout.strip()


def wrapper_source(kernel: Kernel, t: str) -> str:
    """The generated ``extern "C"`` grid loop for one instantiation."""
    unpack = "\n".join(f"    {p.c_type(t)} a{i} = *static_cast<{p.c_type(t)}*>(args[{i}]);"
                       for i, p in enumerate(kernel.params))
    call = ", ".join(f"a{i}" for i in range(len(kernel.params)))
    fibers = "true" if kernel.cooperative else "false"
    return f"""
extern "C" int {symbol(kernel, t)}(void** args, const unsigned* dims, int schedule, unsigned long long seed,
                                   char* err, int errlen, unsigned long long* shared_peak) {{
{unpack}
    auto body = [&]() {{ {kernel.name}<{t}>({call}); }};
    return dn::run_grid("{kernel.name}<{t}>", {fibers}, body, dims, schedule, seed, err, errlen, shared_peak);
}}
"""


def symbol(kernel: Kernel, t: str) -> str:
    return f"dn_emu_{kernel.name}_{t}"


def translation_unit(table: KernelTable, source: str) -> str:
    """Header + kernel source + wrappers for every instantiation in it, as one C++ file."""
    path = table.source_path(source)
    parts = [text for header in HEADERS for text in (f'#line 1 "{header.name}"\n', header.read_text(), "\n")]
    parts += [f'#line 1 "{path}"\n', table.read_source(source),
             '\n#line 1 "<generated emulator wrappers>"\n']
    parts += [wrapper_source(k, t) for k in table.sources()[source] for t in k.types]
    return "".join(parts)


_LOADED: dict[Path, ctypes.CDLL] = {}
_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def load_library(table: KernelTable, source: str, cache_dir: Path | None = None) -> ctypes.CDLL:
    """Compile (or find in the cache) and load the emulator library of one source file."""
    cxx = compiler()
    ok, why = emulator_available()
    if not ok:
        raise EmulatorUnavailableError(f"kernel emulator unavailable: {why}")
    code = translation_unit(table, source)
    key = "\0".join([code, cxx, _compiler_identity(cxx), *CXX_FLAGS])
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = folder / f"{Path(source).stem}-{digest}.so"
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(final, threading.Lock())
    with lock:
        if final in _LOADED:
            return _LOADED[final]
        if final.exists():
            stats["disk_hits"] += 1
        else:
            _compile(code, final, cxx, table.source_path(source))
        lib = ctypes.CDLL(str(final))
        _LOADED[final] = lib
        return lib


def _compile(code: str, final: Path, cxx: str, source_path: Path) -> None:
    from ..outputs import publish, scratch_folder, write_text

    with scratch_folder(final.parent) as tmp:  # private: the compiler writes its files there
        src, out = tmp / (final.stem + ".cpp"), tmp / final.name
        write_text(src, code, "emulator kernel source")
        cmd = [cxx, *CXX_FLAGS, "-o", str(out), str(src)]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except OSError as e:
            raise EmulatorUnavailableError(f"cannot run {cxx}: {e}") from e
        stats["compiles"] += 1
        if res.returncode != 0:
            raise KernelCompileError(
                f"{cxx} failed to compile {source_path.name} for the emulator "
                f"({source_path}; exit {res.returncode}):\n{res.stdout}{res.stderr}")
        publish(out, final, "compiled emulator kernels")


class EmulatorLauncher:
    """Launch the kernels on the CPU; same API as ``launch.CupyLauncher`` with NumPy arrays.

    ``launch(name, dtype, *args)`` checks the arguments against the declaration (see
    ``binding.bind``) and the launch shape against a GPU's limits (``binding.launch_shape``),
    then runs the grid: grid-stride kernels on ``min(ceil(size / block), max_blocks)`` blocks of
    ``block`` threads, cooperative kernels on their declared grid and block. ``table`` and
    ``cache_dir`` select other kernel sources (tests) and another cache folder.

    With ``device_arrays=True`` (device "emu") array arguments must be emu arrays, as a GPU
    launch takes device arrays only: a host ``numpy.ndarray`` raises KernelArgTypeError. The
    kernels then read and write the emu arrays' buffers in place.

    ``record``: a list to append one ``(instantiation, grid, block, shared bytes per block)``
    per launch to (the kernel cost report reads launch shapes from it); None records nothing.
    """

    def __init__(self, block: int = 256, max_blocks: int = 65535, check: bool = False,
                 table: KernelTable | None = None, cache_dir: str | Path | None = None,
                 device_arrays: bool = False) -> None:
        check_launch_config(block, max_blocks)
        ok, why = emulator_available()
        if not ok:
            raise EmulatorUnavailableError(f"kernel emulator unavailable: {why}")
        self.block, self.max_blocks, self.check = block, max_blocks, bool(check)
        self.device_arrays = bool(device_arrays)
        self.table = KERNELS if table is None else table
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.record: list[tuple[str, tuple[int, int, int], int, int]] | None = None
        self._fns: dict[tuple[str, str], Any] = {}  # (kernel, type) -> ctypes function

    def __repr__(self) -> str:
        return (f"EmulatorLauncher(block={self.block}, max_blocks={self.max_blocks}, "
                f"check={self.check})")

    def library(self, source: str) -> ctypes.CDLL:
        """The loaded library of one source file (compiled or taken from the cache)."""
        return load_library(self.table, source, self.cache_dir)

    def compile_all(self, workers: int = 4) -> None:
        """Compile every source of the table now (in parallel) instead of on first use."""
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(self.library, self.table.sources()))

    def launch(self, name: str, dtype: Any, *args: Any) -> None:
        """Run kernel ``name`` instantiated for ``dtype`` (np.float32 / np.float64) on ``args``."""
        kernel = self.table[name]
        args = self._device_buffers(kernel, args) if self.device_arrays else tuple(
            unwrap(a) if type(a) is EmuArray else a for a in args)
        bound = bind(kernel, dtype, args, np.ndarray, "numpy")
        grid, block = launch_shape(kernel, bound.scalars, bound.size, self.block, self.max_blocks)
        if 0 in grid:
            return
        fn = self._function(kernel, bound.t)
        if not self.check:
            self.run(fn, bound, bound.values, grid, block)
            return
        from .emulator_check import checked_launch

        checked_launch(self, fn, bound, grid, block)

    @staticmethod
    def _device_buffers(kernel: Kernel, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """The buffers behind emu array arguments; a host array where a pointer is declared is
        the leak a GPU launch refuses."""
        out = list(args)
        for i, (p, a) in enumerate(zip(kernel.params, args)):
            if type(a) is EmuArray:
                out[i] = unwrap(a)
            elif p.is_pointer and isinstance(a, np.ndarray):
                raise KernelArgTypeError(f"kernel {kernel.name}, parameter {p.name} ({p.ctype}): expected an 'emu' "
                                         "device array, got a host numpy.ndarray; move it with "
                                         "dn.to_device(array, 'emu')")
        return tuple(out)

    def _function(self, kernel: Kernel, t: str) -> Any:
        key = (kernel.name, t)
        fn = self._fns.get(key)
        if fn is None:
            fn = getattr(self.library(kernel.source), symbol(kernel, t))
            fn.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_uint), ctypes.c_int,
                           ctypes.c_ulonglong, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_ulonglong)]
            fn.restype = ctypes.c_int
            self._fns[key] = fn
        return fn

    def run(self, fn: Any, bound: Bound, values: list[Any], grid: tuple[int, int, int], block: int,
            schedule: int = IN_ORDER, seed: int = 0) -> None:
        """One run of the grid under one schedule; a broken CUDA rule raises KernelCheckError."""
        holders: list[Any] = []
        for p, v in zip(bound.kernel.params, values):
            if p.is_pointer:
                holders.append(ctypes.c_void_p(v.ctypes.data))
            else:
                holders.append(_CTYPES[bound.t if p.base == "T" else p.base](v.item()))
        argv = (ctypes.c_void_p * len(holders))(*[ctypes.addressof(h) for h in holders])
        dims = (ctypes.c_uint * 4)(*grid, block)
        err = ctypes.create_string_buffer(_ERRLEN)
        peak = ctypes.c_ulonglong(0)
        if fn(argv, dims, schedule, seed, err, _ERRLEN, ctypes.byref(peak)):
            raise KernelCheckError([err.value.decode(errors="replace")])
        if self.record is not None:
            self.record.append((bound.instantiation, grid, block, int(peak.value)))
