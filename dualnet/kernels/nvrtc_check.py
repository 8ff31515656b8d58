"""Compile every kernel to PTX with NVRTC directly: no GPU, no driver, no CUDA toolkit needed.

``cupy.RawModule`` cannot compile without a device (it asks the device for its architecture), so
this module drives ``cupy_backends.cuda.libs.nvrtc`` itself:

    ptx = compile_all_ptx("compute_90")      # {"im2col<float>": "<PTX text>", ...}

Locating NVRTC: CuPy >= 14 finds the ``nvidia-cuda-nvrtc-cu12`` wheel through ``cuda.pathfinder``;
older CuPy versions dlopen ``libnvrtc.so.12`` by name, which fails when the library only lives in
the wheel.  :func:`load_nvrtc` therefore first preloads the wheel's ``libnvrtc.so*`` (found under
``nvidia/cuda_nvrtc/lib`` or ``nvidia/cu13/lib`` of any ``sys.path`` entry, or in
``$DUALNET_NVRTC_LIBDIR``) with
``RTLD_GLOBAL``, so a later dlopen by soname resolves to the already-loaded copy; then it checks
that NVRTC answers ``getVersion``.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import KernelCompileError, NvrtcUnavailableError
from .launch import NVRTC_OPTIONS
from .signatures import KERNELS, KernelTable

DEFAULT_ARCHS = ("compute_80", "compute_90")
OPTIONS = NVRTC_OPTIONS  # the launcher's own options: CI compiles what a GPU runs

_nvrtc: Any = None


def wheel_libdirs() -> list[Path]:
    """Folders that may hold the nvidia-cuda-nvrtc wheel's shared libraries."""
    dirs = []
    if os.environ.get("DUALNET_NVRTC_LIBDIR"):
        dirs.append(Path(os.environ["DUALNET_NVRTC_LIBDIR"]))
    for entry in sys.path:
        root = Path(entry or ".") / "nvidia"
        # CUDA 12 wheels: nvidia/cuda_nvrtc/lib; CUDA 13 wheels: nvidia/cu13/lib
        for d in [root / "cuda_nvrtc" / "lib", *sorted(root.glob("cu[0-9]*/lib"))]:
            if d.is_dir() and d not in dirs:
                dirs.append(d)
    return dirs


def _preload_wheel_nvrtc() -> list[str]:
    """dlopen the wheel's libnvrtc with RTLD_GLOBAL; return the files loaded."""
    loaded = []
    for d in wheel_libdirs():
        # builtins first: libnvrtc dlopens it by soname when compiling
        for pattern in ("libnvrtc-builtins.so.*", "libnvrtc.so.*"):
            for f in sorted(d.glob(pattern)):
                if ".alt." in f.name:
                    continue
                try:
                    ctypes.CDLL(str(f), mode=ctypes.RTLD_GLOBAL)
                    loaded.append(str(f))
                except OSError:
                    pass
                break
        if loaded:
            break
    return loaded


def load_nvrtc() -> Any:
    """Return ``cupy_backends.cuda.libs.nvrtc`` with a working NVRTC behind it."""
    global _nvrtc
    if _nvrtc is not None:
        return _nvrtc
    preloaded = _preload_wheel_nvrtc()
    try:
        from cupy_backends.cuda.libs import nvrtc
    except ImportError as e:
        raise NvrtcUnavailableError(f"cupy_backends cannot be imported ({e}); install "
                                    "cupy-cuda12x and nvidia-cuda-nvrtc-cu12") from e
    try:
        nvrtc.getVersion()
    except Exception as e:  # CuPy raises various types when the library is missing
        tried = ", ".join(preloaded) or "no nvidia/cuda_nvrtc/lib folder on sys.path"
        raise NvrtcUnavailableError(
            f"NVRTC cannot be loaded ({type(e).__name__}: {e}); preloaded: {tried}. Install "
            "nvidia-cuda-nvrtc-cu12 or a CUDA toolkit, or set DUALNET_NVRTC_LIBDIR") from e
    _nvrtc = nvrtc
    return nvrtc


def nvrtc_version() -> tuple[int, int]:
    major, minor = load_nvrtc().getVersion()
    return int(major), int(minor)


@dataclass
class PtxResult:
    """PTX of one source file for one architecture."""

    source: str
    arch: str
    ptx: str
    lowered: dict[str, str]  # name expression -> mangled name in the PTX
    log: str


def compile_source_ptx(table: KernelTable, source: str, arch: str,
                       options: Iterable[str] = OPTIONS) -> PtxResult:
    """Compile one source file of ``table`` with all its instantiations for ``arch``."""
    nvrtc = load_nvrtc()
    path = table.source_path(source)
    names = table.name_expressions(source)
    prog = nvrtc.createProgram(table.read_source(source), path.name, (), ())
    try:
        for name in names:
            nvrtc.addNameExpression(prog, name)
        opts = (f"--gpu-architecture={arch}", *options)
        try:
            nvrtc.compileProgram(prog, opts)
        except nvrtc.NVRTCError as e:
            raise KernelCompileError(f"NVRTC failed to compile {path.name} ({path}) for {arch} "
                                     f"with {' '.join(opts)}: {e}\n"
                                     f"{nvrtc.getProgramLog(prog)}") from e
        ptx = nvrtc.getPTX(prog)
        ptx = ptx.decode() if isinstance(ptx, bytes) else ptx
        lowered = {name: nvrtc.getLoweredName(prog, name) for name in names}
        return PtxResult(source, arch, ptx.rstrip("\0"), lowered, nvrtc.getProgramLog(prog))
    finally:
        nvrtc.destroyProgram(prog)


def compile_sources(arch: str, table: KernelTable | None = None) -> list[PtxResult]:
    table = KERNELS if table is None else table
    return [compile_source_ptx(table, s, arch) for s in table.sources()]


def compile_all_ptx(arch: str = "compute_80", table: KernelTable | None = None) -> dict[str, str]:
    """{instantiation: PTX of its source file} for every kernel of the table, compiled for arch."""
    out = {}
    for res in compile_sources(arch, table):
        for name in res.lowered:
            out[name] = res.ptx
    return out
