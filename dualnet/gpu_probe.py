"""The GPU probe behind `dn.devices()` and `dualnet devices`: does a run have what it needs?

A successful `import cupy` proves little, and neither does `getDeviceCount()`: CuPy's CUDA
runtime is linked statically, and NVRTC, cuBLAS and the CUDA headers are loaded only when the
first kernel compiles or the first product runs, so a machine with the driver alone would say
"available" and fail on the first array operation. The probe tries what a run does, in order,
and collects every problem it finds with its fix:

1. exactly one CuPy package is installed (importlib.metadata, as CuPy's own duplicate check);
2. CuPy imports;
3. the driver: present, not older than CuPy's CUDA runtime (both versions named, and the other
   CuPy package suggested where it fits the driver), with a device at the index asked for;
4. the CUDA toolkit pieces a run loads: NVRTC, the CUDA headers CuPy's kernels include, cuBLAS
   (all three come with the `[ctk]` extra of CuPy's wheels, or a system CUDA toolkit);
5. on the device: a tiny `RawModule` compiles and runs, and a 2x2 cuBLAS product is right.

Everything the probe asks of the machine goes through `Environment`, so tests can stand in for
each failure without the hardware. Results are cached per process (`reset()` clears them).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

__all__ = ["Environment", "ProbeResult", "probe", "reset", "cupy_packages", "cuda_version"]

#: distributions that each install the `cupy` module (CuPy's _environment lists the same)
_CUPY_DIST = re.compile(r"^(cupy|cupy-cuda\d+x?|cupy-rocm-[\d-]+|amd-cupy)$")

#: minimum NVIDIA driver per CuPy CUDA major (CUDA minor-version compatibility)
DRIVER_FOR = {12: "525", 13: "580"}

_PROBE_KERNEL = r'''
extern "C" __global__ void dn_probe(float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = 2.0f * i;
}
'''


def cuda_version(v: int) -> str:
    """12090 -> "12.9" (the encoding of cudaRuntimeGetVersion / cudaDriverGetVersion)."""
    return f"{v // 1000}.{(v % 1000) // 10}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class Environment:
    """The machine as the probe sees it; every method may raise what the real call raises."""

    def packages(self) -> list[tuple[str, str]]:
        return cupy_packages()

    def import_cupy(self) -> Any:
        return importlib.import_module("cupy")

    def nvrtc_version(self) -> tuple[int, int]:
        from cupy_backends.cuda.libs import nvrtc

        major, minor = nvrtc.getVersion()
        return int(major), int(minor)

    def header_dir(self) -> str | None:
        # what CuPy 14 itself asks before compiling any kernel (core.pyx,
        # assemble_cupy_compiler_options)
        from cuda.pathfinder import find_nvidia_header_directory

        return find_nvidia_header_directory("cudart")

    def load_cublas(self) -> None:
        importlib.import_module("cupy_backends.cuda.libs.cublas")


def cupy_packages(distributions: Any = None) -> list[tuple[str, str]]:
    """(name, version) of every installed distribution that provides the `cupy` module."""
    dists = importlib.metadata.distributions() if distributions is None else distributions
    found = {}
    for d in dists:
        name = (d.metadata["Name"] or "").lower()
        if _CUPY_DIST.match(name):
            found[name] = d.version
    return sorted(found.items())


@dataclass
class ProbeResult:
    """What the probe found: `usable` (device `index` can run dualnet), the number of devices
    the driver sees, the problems (each with its fix) and notes that do not block a run."""

    usable: bool
    count: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        if not self.problems:
            return ""
        head, *rest = self.problems
        return head + "".join(f"; also {p}" for p in rest)


def _package(pkgs: list[tuple[str, str]], runtime_major: int | None) -> str:
    for name, _ in pkgs:
        if name.startswith("cupy-cuda"):
            return name
    return "cupy-cuda13x" if runtime_major == 13 else "cupy-cuda12x"


def _ctk_fix(pkg: str) -> str:
    return f"pip install '{pkg}[ctk]' (CuPy's CUDA toolkit extra; `pip install dualnet[gpu]` has it), " \
           "or install the CUDA toolkit and set CUDA_PATH"


def _driver_problem(exc: BaseException, runtime: Any, pkg: str, version: str, rt: int | None) -> str:
    try:
        drv = int(runtime.driverGetVersion())
    except Exception:
        drv = 0
    rt_text = f"CUDA {cuda_version(rt)}" if rt else "its CUDA"
    status = getattr(exc, "status", None)
    if drv == 0:
        return (f"no NVIDIA driver found ({pkg} {version} ships the {rt_text} runtime, which needs "
                f"libcuda from the driver; {_first_line(exc)}): install the NVIDIA driver (>= "
                f"{DRIVER_FOR[12]} for cupy-cuda12x, >= {DRIVER_FOR[13]} for cupy-cuda13x), or use "
                "`device=\"cpu\"` (or \"emu\" to test the GPU code path)")
    if rt and drv < rt and (status == 35 or "insufficient" in str(exc).lower()):
        rt_major, drv_major = rt // 1000, drv // 1000
        if rt_major >= 13 and drv_major == 12:
            fix = (f"install cupy-cuda12x instead, which runs on any driver >= {DRIVER_FOR[12]} "
                   f"(pip uninstall {pkg} && pip install 'dualnet[gpu]'), or update the NVIDIA driver "
                   f"to >= {DRIVER_FOR[13]}")
        else:
            need = DRIVER_FOR.get(rt_major, "a newer one")
            fix = f"update the NVIDIA driver (>= {need} for {pkg})"
        return (f"the NVIDIA driver is older than CuPy's CUDA runtime (driver: CUDA {cuda_version(drv)}, "
                f"{pkg} {version}: CUDA {cuda_version(rt)}): {fix}")
    if status == 100 or "no cuda-capable device" in str(exc).lower() or "nodevice" in str(exc).lower():
        return (f"the NVIDIA driver (CUDA {cuda_version(drv)}) sees no CUDA device on this machine: use "
                "`device=\"cpu\"` (or \"emu\" to test the GPU code path)")
    return f"CUDA is not usable ({_first_line(exc)}): use `device=\"cpu\"` or \"emu\""


def _toolkit_problems(env: Environment, pkg: str) -> list[str]:
    problems = []
    try:
        env.nvrtc_version()
    except Exception as exc:
        problems.append(f"NVRTC (the CUDA runtime compiler that builds dualnet's kernels) cannot be loaded "
                        f"({_first_line(exc)}): {_ctk_fix(pkg)}")
    try:
        found = env.header_dir()
    except Exception as exc:
        problems.append(f"the CUDA headers cannot be searched for ({_first_line(exc)}): {_ctk_fix(pkg)}")
    else:
        if not found:
            problems.append(f"the CUDA headers (cuda_fp16.h, ..., included by every CuPy kernel) are not found: "
                            f"{_ctk_fix(pkg)}")
    try:
        env.load_cublas()
    except Exception as exc:
        problems.append(f"cuBLAS (every matrix product) cannot be loaded ({_first_line(exc)}): {_ctk_fix(pkg)}")
    return problems


def _device_problems(cupy: Any, index: int, pkg: str) -> list[str]:
    """Compile and run a tiny RawModule, then a 2x2 cuBLAS product, on device `index`."""
    problems = []
    with cupy.cuda.Device(index):
        try:
            fn = cupy.RawModule(code=_PROBE_KERNEL).get_function("dn_probe")
            y = cupy.zeros(4, dtype=cupy.float32)
            fn((1,), (32,), (y, cupy.int32(4)))
            got = [float(v) for v in y.get()]
            if got != [0.0, 2.0, 4.0, 6.0]:
                problems.append(f"a tiny test kernel ran on gpu:{index} but returned {got} instead of "
                                "[0, 2, 4, 6]: the driver or the device is faulty")
        except Exception as exc:
            problems.append(f"a tiny RawModule does not compile or run on gpu:{index} ({_first_line(exc)}): "
                            f"{_ctk_fix(pkg)}")
        try:
            a = cupy.ones((2, 2), dtype=cupy.float32)
            got2 = (a @ a).get().tolist()
            if got2 != [[2.0, 2.0], [2.0, 2.0]]:
                problems.append(f"a 2x2 cuBLAS product on gpu:{index} returned {got2} instead of 2s")
        except Exception as exc:
            problems.append(f"a 2x2 cuBLAS product fails on gpu:{index} ({_first_line(exc)}): {_ctk_fix(pkg)}")
    return problems


def probe(index: int = 0, env: Environment | None = None) -> ProbeResult:
    """Whether CUDA device `index` can run dualnet, and if not every reason with its fix."""
    env = Environment() if env is None else env
    problems: list[str] = []
    notes: list[str] = []
    try:
        pkgs = env.packages()
    except Exception:  # metadata of a broken environment: the import below still tells
        pkgs = []
    if len(pkgs) > 1:
        listed = ", ".join(f"{n} {v}" for n, v in pkgs)
        problems.append(f"{len(pkgs)} CuPy packages are installed ({listed}), which overwrite each other's "
                        "files: pip uninstall all of them, then install one (pip install 'dualnet[gpu]' for "
                        "CUDA 12 drivers >= 525, 'dualnet[gpu-cuda13]' for drivers >= 580)")
    try:
        cupy = env.import_cupy()
    except ImportError as exc:
        if not pkgs:
            return ProbeResult(False, 0, ["CuPy is not installed: pip install 'dualnet[gpu]' (cupy-cuda12x, any "
                                          f"driver >= {DRIVER_FOR[12]}) or 'dualnet[gpu-cuda13]' (cupy-cuda13x, "
                                          f"drivers >= {DRIVER_FOR[13]})"])
        return ProbeResult(False, 0, problems + [f"CuPy fails to import ({_first_line(exc)}): reinstall "
                                                 f"{_package(pkgs, None)}"])
    except Exception as exc:  # a broken CuPy install raises all sorts of things
        return ProbeResult(False, 0, problems + [f"CuPy fails to import ({_first_line(exc)}): reinstall "
                                                 f"{_package(pkgs, None)}"])
    runtime = cupy.cuda.runtime
    try:
        rt: int | None = int(runtime.runtimeGetVersion())
    except Exception:
        rt = None
    pkg = _package(pkgs, rt // 1000 if rt else None)
    version = str(getattr(cupy, "__version__", "?"))
    if _older_than(version, (14, 2)):
        notes.append(f"CuPy {version} recompiles dualnet's kernels on every start (cupy#10173): "
                     f"pip install -U '{pkg}[ctk]>=14.2'")
    count = 0
    try:
        count = int(runtime.getDeviceCount())
    except Exception as exc:
        problems.insert(0, _driver_problem(exc, runtime, pkg, version, rt))
    else:
        if count == 0:
            problems.insert(0, "CuPy sees no CUDA device on this machine: use `device=\"cpu\"` (or \"emu\" to "
                               "test the GPU code path)")
        elif index >= count:
            problems.insert(0, f"CUDA device {index} does not exist: this machine has {count} "
                               f"(gpu:0..gpu:{count - 1})")
    problems += _toolkit_problems(env, pkg)
    if not problems:
        problems += _device_problems(cupy, index, pkg)
    return ProbeResult(not problems, count, problems, notes)


def _older_than(version: str, wanted: tuple[int, int]) -> bool:
    m = re.match(r"(\d+)\.(\d+)", version)
    return m is not None and (int(m.group(1)), int(m.group(2))) < wanted


@cache
def cached_probe(index: int) -> ProbeResult:
    """`probe(index)` once per process: the probe compiles a kernel."""
    return probe(index)


def reset() -> None:
    """Forget cached probe results (after installing a package, in tests)."""
    cached_probe.cache_clear()
