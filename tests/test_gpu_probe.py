"""The GPU probe names what is missing and how to fix it, for each way a machine can lack a
piece of what a run needs (stand-ins for each failure; no GPU needed)."""

from __future__ import annotations

import numpy as np
import pytest

from dualnet import gpu_probe
from dualnet.gpu_probe import Environment, cupy_packages, probe

cupy_standin = pytest.importorskip("standins.multi_gpu_cupy")


def _probe_kernel(y, n):
    y[:n] = 2.0 * np.arange(n)


class StandInEnvironment(Environment):
    """A machine described by its answers: every piece present unless a test says otherwise."""

    def __init__(self, count=1, packages=(("cupy-cuda12x", "14.2.0"),), runtime=12090, driver=12090,
                 device_error=None, import_error=None, nvrtc=None, headers="/usr/local/cuda/include", cublas=None,
                 compile_error=None):
        self.standin = cupy_standin.StandIn(count)
        self.standin.python_kernels["dn_probe"] = _probe_kernel
        rt = self.standin.module.cuda.runtime
        rt.runtimeGetVersion = lambda: runtime
        rt.driverGetVersion = lambda: driver
        if device_error is not None:
            def fail():
                raise device_error
            rt.getDeviceCount = fail
        if compile_error is not None:
            def broken(*args, **kwargs):
                raise compile_error
            self.standin.module.RawModule = broken
        self._packages, self._import_error = list(packages), import_error
        self._nvrtc, self._headers, self._cublas = nvrtc, headers, cublas

    def packages(self):
        return self._packages

    def import_cupy(self):
        if self._import_error is not None:
            raise self._import_error
        return self.standin.module

    def nvrtc_version(self):
        if self._nvrtc is not None:
            raise self._nvrtc
        return (12, 9)

    def header_dir(self):
        return self._headers

    def load_cublas(self):
        if self._cublas is not None:
            raise self._cublas


INSUFFICIENT = cupy_standin.CUDARuntimeError(
    35, "cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version")


def test_a_complete_machine_passes_every_step_including_a_kernel_and_a_product():
    env = StandInEnvironment(count=2)
    result = probe(1, env)
    assert result.usable and result.count == 2 and result.reason == ""
    assert ("dn_probe", 1) in env.standin.launches  # the tiny kernel ran on the device asked for


def test_cupy_not_installed_says_which_extra_to_install():
    result = probe(0, StandInEnvironment(packages=(), import_error=ImportError("No module named 'cupy'")))
    assert not result.usable
    assert "CuPy is not installed" in result.reason and "dualnet[gpu]" in result.reason
    assert "dualnet[gpu-cuda13]" in result.reason


def test_no_driver_is_named_as_such():
    result = probe(0, StandInEnvironment(driver=0, device_error=INSUFFICIENT))
    assert result.reason.startswith("no NVIDIA driver found")
    assert "CUDA 12.9" in result.reason and "install the NVIDIA driver" in result.reason


def test_an_old_driver_names_both_versions_and_suggests_the_other_cupy():
    result = probe(0, StandInEnvironment(packages=(("cupy-cuda13x", "14.2.0"),), runtime=13000, driver=12040,
                                         device_error=INSUFFICIENT))
    assert "driver: CUDA 12.4" in result.reason and "CUDA 13.0" in result.reason
    assert "install cupy-cuda12x instead" in result.reason and ">= 580" in result.reason


def test_an_old_driver_for_cuda12_says_update_the_driver():
    result = probe(0, StandInEnvironment(runtime=12090, driver=11080, device_error=INSUFFICIENT))
    assert "driver: CUDA 11.8" in result.reason and "update the NVIDIA driver (>= 525" in result.reason


def test_two_cupy_packages_installed_are_named():
    result = probe(0, StandInEnvironment(packages=(("cupy-cuda12x", "14.2.0"), ("cupy-cuda13x", "14.2.0"))))
    assert not result.usable
    assert "2 CuPy packages are installed (cupy-cuda12x 14.2.0, cupy-cuda13x 14.2.0)" in result.reason
    assert "pip uninstall" in result.reason


@pytest.mark.parametrize("missing,words", [
    (dict(nvrtc=RuntimeError("CuPy failed to load libnvrtc.so.12: OSError: cannot open shared object file")),
     "NVRTC"),
    (dict(headers=None), "CUDA headers"),
    (dict(cublas=ImportError("libcublas.so.12: cannot open shared object file")), "cuBLAS"),
    (dict(compile_error=cupy_standin.CompileException("catastrophic error: cannot open source file")),
     "tiny RawModule"),
])
def test_a_missing_toolkit_piece_is_named_with_the_ctk_extra(missing, words):
    result = probe(0, StandInEnvironment(**missing))
    assert not result.usable
    assert words in result.reason
    assert "pip install 'cupy-cuda12x[ctk]'" in result.reason


def test_every_problem_is_reported_not_only_the_first():
    result = probe(0, StandInEnvironment(driver=0, device_error=INSUFFICIENT, headers=None,
                                         cublas=ImportError("libcublas.so.12 not found")))
    assert result.reason.startswith("no NVIDIA driver")
    assert "also the CUDA headers" in result.reason and "also cuBLAS" in result.reason


def test_a_device_index_beyond_the_count_is_refused():
    result = probe(3, StandInEnvironment(count=2))
    assert "CUDA device 3 does not exist: this machine has 2" in result.reason


def test_an_old_cupy_gets_a_note_about_recompiling_kernels():
    env = StandInEnvironment()
    env.standin.module.__version__ = "13.6.0"
    result = probe(0, env)
    assert result.usable and any("cupy#10173" in n for n in result.notes)


def test_cupy_packages_are_found_in_the_installed_distributions():
    class Dist:
        def __init__(self, name, version):
            self.metadata, self.version = {"Name": name}, version

    dists = [Dist("numpy", "2.0"), Dist("cupy-cuda12x", "14.2.0"), Dist("CuPy-CUDA13x", "14.2.0"),
             Dist("cupy-rocm-7-0", "14.0.0"), Dist("cupyx-extra", "1.0")]
    assert cupy_packages(dists) == [("cupy-cuda12x", "14.2.0"), ("cupy-cuda13x", "14.2.0"),
                                    ("cupy-rocm-7-0", "14.0.0")]


def test_this_machine_gets_a_truthful_reason():
    """Whatever this machine lacks, the probe's verdict agrees with what CuPy itself can do."""
    gpu_probe.reset()
    result = gpu_probe.cached_probe(0)
    try:
        import cupy
    except ImportError:
        assert "CuPy is not installed" in result.reason
        return
    try:
        ok = bool((cupy.ones((2, 2), dtype=cupy.float32) @ cupy.ones((2, 2), dtype=cupy.float32)).get()[0, 0] == 2)
    except Exception:
        ok = False
    if not ok:
        assert not result.usable and result.reason
