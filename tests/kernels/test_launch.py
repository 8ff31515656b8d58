"""CupyLauncher without a GPU: a stand-in cupy module records what the launcher asks of CuPy."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import types

import numpy as np
import pytest

from dualnet.errors import DeviceMismatchError
from dualnet.kernels import launch
from dualnet.kernels.errors import KernelArgTypeError, KernelCompileError
from dualnet.kernels.launch import CupyLauncher


class FakeArray:
    """Just enough of cupy.ndarray for the argument checks."""

    def __init__(self, a: np.ndarray, device: int = 0) -> None:
        self.a, self.dtype, self.shape, self.size = a, a.dtype, a.shape, a.size
        self.flags, self.strides = a.flags, a.strides
        self.device = types.SimpleNamespace(id=device)


class FakeCompileException(Exception):
    def get_message(self) -> str:
        return "faulty.cu(3): error: identifier \"boom\" is undefined"


class FakeRawModule:
    made: list = []

    def __init__(self, code, options, name_expressions):
        if "boom" in code:
            raise FakeCompileException()
        FakeRawModule.made.append((code, options, list(name_expressions)))
        self.calls = []

    def get_function(self, name):
        return lambda grid, block, args: self.calls.append((name, grid, block, args))


@pytest.fixture
def fake_cupy(monkeypatch):
    fake = types.SimpleNamespace(
        ndarray=FakeArray, RawModule=FakeRawModule,
        cuda=types.SimpleNamespace(Device=lambda i: contextlib.nullcontext(),
                                   compiler=types.SimpleNamespace(CompileException=FakeCompileException)))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(launch, "_MODULES", {})
    FakeRawModule.made = []
    return fake


def test_compiles_once_with_every_instantiation(fake_cupy, faulty_table):
    launcher = CupyLauncher(block=128, table=faulty_table)
    x, y = FakeArray(np.zeros(1000, np.float32)), FakeArray(np.zeros(1000, np.float32))
    launcher.launch("scale_ok", np.float32, x, y, 1000, 2.0)
    launcher.launch("scale_ok", np.float64, FakeArray(np.zeros(5)), FakeArray(np.zeros(5)), 5, 2.0)
    CupyLauncher(table=faulty_table).launch("fill_long", np.float32, y, 1000, 1.0)
    assert len(FakeRawModule.made) == 1
    code, options, names = FakeRawModule.made[0]
    assert code == faulty_table.read_source("faulty.cu") and options == ("--std=c++14",)
    assert names == faulty_table.name_expressions("faulty.cu")
    assert "scale_ok<float>" in names and "writes_input<double>" in names


def test_launch_arguments(fake_cupy, faulty_table):
    launcher = CupyLauncher(block=128, max_blocks=3, table=faulty_table)
    module_calls = []
    fns = launcher.functions("faulty.cu")
    for name in fns:
        fns[name] = (lambda n: lambda grid, block, args: module_calls.append((n, grid, block, args)))(name)
    x, y = FakeArray(np.zeros(300, np.float32)), FakeArray(np.zeros(300, np.float32))
    launcher.launch("scale_ok", np.float32, x, y, 300, 2.0)
    launcher.launch("fill_long", np.float32, FakeArray(np.zeros(10**4, np.float32)), 10**4, 1.5)
    launcher.launch("scale_ok", np.float32, FakeArray(np.zeros(0, np.float32)),
                    FakeArray(np.zeros(0, np.float32)), 0, 2.0)  # empty: no launch
    (n1, g1, b1, a1), (n2, g2, b2, a2) = module_calls
    assert (n1, g1, b1) == ("scale_ok<float>", (3,), (128,))
    assert a1[0] is x and a1[1] is y
    assert type(a1[2]) is np.int32 and type(a1[3]) is np.float32 and a1[3] == 2.0
    assert (n2, g2) == ("fill_long<float>", (3,)) and type(a2[1]) is np.int64


def test_argument_errors(fake_cupy, faulty_table):
    launcher = CupyLauncher(table=faulty_table)
    x, y = FakeArray(np.zeros(4, np.float32)), FakeArray(np.zeros(4, np.float32))
    with pytest.raises(KernelArgTypeError, match="expected a cupy array, got numpy.ndarray"):
        launcher.launch("scale_ok", np.float32, np.zeros(4, np.float32), y, 4, 1.0)
    with pytest.raises(TypeError, match=r"parameter size.*int32.*int64"):
        launcher.launch("scale_ok", np.float32, x, y, np.int64(4), 1.0)
    with pytest.raises(DeviceMismatchError, match="parameter y: array is on gpu:1"):
        launcher.launch("scale_ok", np.float32, x, FakeArray(np.zeros(4, np.float32), 1), 4, 1.0)


def test_compile_error(fake_cupy, faulty_table, tmp_path):
    from dualnet.kernels.signatures import KernelTable

    (tmp_path / "faulty.cu").write_text(faulty_table.read_source("faulty.cu") + "\n// boom\n")
    launcher = CupyLauncher(table=KernelTable(list(faulty_table), tmp_path))
    with pytest.raises(KernelCompileError, match=r"(?s)NVRTC failed to compile faulty\.cu.*boom"):
        launcher.compile_all()


def test_importing_the_kernel_layer_does_not_import_cupy():
    code = ("import sys, dualnet; before = 'cupy' in sys.modules\n"
            "import dualnet.kernels.launch, dualnet.kernels.emulator, dualnet.kernels.signatures\n"
            "import dualnet.kernels.nvrtc_check\n"
            "assert ('cupy' in sys.modules) == before, 'the kernel layer imported cupy'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
