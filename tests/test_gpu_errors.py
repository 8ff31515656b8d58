"""CUDA-side failures during a run reach a CLI user as one line (exit 1), never a traceback;
out of GPU memory frees the pool first and reports its bytes. CuPy's exception types are stood
in for by classes with CuPy's module and class names."""

from __future__ import annotations

import sys

import pytest

import dualnet as dn
from dualnet import gpu_errors
from dualnet_cli.main import main

cupy_standin = pytest.importorskip("standins.multi_gpu_cupy")


def cupy_type(module: str, name: str, base: type = Exception) -> type:
    return type(name, (base,), {"__module__": module})


CUDARuntimeError = cupy_type("cupy_backends.cuda.api.runtime", "CUDARuntimeError", RuntimeError)
CUBLASError = cupy_type("cupy_backends.cuda.libs.cublas", "CUBLASError", RuntimeError)
CompileException = cupy_type("cupy.cuda.compiler", "CompileException")
OutOfMemoryError = cupy_type("cupy.cuda.memory", "OutOfMemoryError", MemoryError)


class Pool:
    def __init__(self):
        self.freed = False

    def free_all_blocks(self):
        self.freed = True

    def used_bytes(self):
        return 1024 if self.freed else 4096

    def total_bytes(self):
        return 2048 if self.freed else 8192


@pytest.fixture
def cupy_loaded(monkeypatch):
    module = cupy_standin.StandIn(1).module
    pool = Pool()
    module.get_default_memory_pool = lambda: pool
    monkeypatch.setitem(sys.modules, "cupy", module)
    return pool


def fail_with(monkeypatch, exc):
    def devices():
        raise exc
    monkeypatch.setattr(dn, "devices", devices)


def run(capsys):
    with pytest.raises(SystemExit) as info:
        main(["devices"])
    return info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("exc,words", [
    (CUDARuntimeError("cudaErrorIllegalAddress: an illegal memory access was encountered"), "CUDA runtime error"),
    (CUBLASError("CUBLAS_STATUS_NOT_INITIALIZED"), "cuBLAS error"),
    (CompileException("/tmp/kern.cu(3): catastrophic error: cannot open source file \"cuda_fp16.h\"\n\n1 error"),
     "failed to compile"),
    (RuntimeError("CuPy failed to load libnvrtc.so.12: OSError: libnvrtc.so.12: cannot open shared object file"),
     "CUDA library cannot be loaded"),
    (RuntimeError("Failed to find CUDA headers. Please install CUDA toolkit headers (e.g., pip install "
                  "cupy-cuda12x[ctk]) or specify CUDA_PATH environment variable."), "CUDA library cannot be loaded"),
    (ImportError("Failure finding \"libcublas.so.12\": No such file"), "CUDA library cannot be loaded"),
])
def test_a_cuda_failure_is_one_line_with_the_fix(monkeypatch, capsys, cupy_loaded, exc, words):
    fail_with(monkeypatch, exc)
    code, err = run(capsys)
    assert code == 1
    assert err.startswith("dualnet: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert words in err and "dualnet devices" in err


def test_out_of_gpu_memory_frees_the_pool_and_reports_its_bytes(monkeypatch, capsys, cupy_loaded):
    fail_with(monkeypatch, OutOfMemoryError("Out of memory allocating 1,073,741,824 bytes (allocated so far: 5 bytes)"))
    code, err = run(capsys)
    assert code == 1 and err.count("\n") == 1
    assert cupy_loaded.freed
    assert "out of GPU memory" in err and "uses 1,024 of the 2,048 bytes" in err and "--batch-size" in err


def test_dualnets_own_out_of_memory_error_gets_the_pool_report_too(monkeypatch, capsys, cupy_loaded):
    from dualnet.train import DeviceOutOfMemory

    fail_with(monkeypatch, DeviceOutOfMemory(512, "training"))
    code, err = run(capsys)
    assert code == 1 and "try --batch-size 256" in err and "uses 1,024 of the 2,048 bytes" in err


def test_other_errors_are_not_taken_for_cuda_ones(cupy_loaded):
    assert gpu_errors.describe(RuntimeError("something else broke")) is None
    assert gpu_errors.describe(KeyError("x")) is None
    from dualnet.kernels.errors import KernelCompileError

    assert gpu_errors.describe(KernelCompileError("NVRTC failed to compile im2col.cu")) is None


def test_without_cupy_loaded_nothing_is_a_cuda_failure(monkeypatch):
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    assert gpu_errors.describe(CUDARuntimeError("cudaErrorUnknown")) is None
    assert gpu_errors.describe(RuntimeError("libnvrtc.so.12 missing")) is None


def test_an_empty_pool_adds_nothing_to_dualnets_out_of_memory_line(monkeypatch, cupy_loaded):
    from dualnet.train import DeviceOutOfMemory

    monkeypatch.setattr(cupy_loaded, "total_bytes", lambda: 0)
    line = gpu_errors.describe(DeviceOutOfMemory(64, "evaluation"))
    assert line == "out of GPU memory at batch size 64 (evaluation): try --batch-size 32"
