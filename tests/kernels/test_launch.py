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
    assert code == faulty_table.read_source("faulty.cu") and options == ("--std=c++14", "--fmad=false")
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


# --- the hot path: FastPlan binding, one lookup per kernel, full checks behind debug ------------

from dualnet.kernels.binding import FastPlan, bind  # noqa: E402
from dualnet.kernels.errors import KernelArgValueError  # noqa: E402
from dualnet.kernels.signatures import KERNELS  # noqa: E402


def valid_args(kernel, dtype, seed):
    """Arguments that satisfy `kernel`'s declaration: small integer scalars, exact-size arrays."""
    rng = np.random.default_rng(seed)
    scalars = {p.name: int(rng.integers(1, 4)) for p in kernel.params if not p.is_pointer and p.base != "T"}
    t = "float" if np.dtype(dtype) == np.float32 else "double"
    args = []
    for p in kernel.params:
        if p.is_pointer:
            args.append(FakeArray(np.zeros(kernel.count(p, scalars), p.dtype(t))))
        elif p.base == "T":
            args.append(float(rng.random()))
        else:
            args.append(scalars[p.name])
    return args


@pytest.mark.parametrize("kernel", list(KERNELS), ids=lambda k: k.name)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_fast_plan_binds_every_declared_kernel_as_the_full_check_does(kernel, dtype):
    for seed in range(3):
        args = valid_args(kernel, dtype, seed)
        values, size = FastPlan(kernel, dtype).bind(args, FakeArray, "cupy")
        full = bind(kernel, dtype, args, FakeArray, "cupy")
        assert size == full.size
        for v, w in zip(values, full.values):
            assert type(v) is type(w) and (v is w if isinstance(v, FakeArray) else v == w)


@pytest.mark.parametrize("change,error", [
    (lambda a: [FakeArray(np.zeros(4, np.float64)), *a[1:]], r"parameter x .* expected dtype float32"),
    (lambda a: [a[0], FakeArray(np.zeros(5, np.float32)), *a[2:]], r"parameter y .* expected 4 elements"),
    (lambda a: [FakeArray(np.zeros(8, np.float32)[::2]), *a[1:]], "not C-contiguous"),
    (lambda a: [*a[:2], 2**31, a[3]], "2147483648 does not fit"),
    (lambda a: [*a[:2], np.int64(4), a[3]], r"parameter size.*int32.*int64"),
    (lambda a: [*a[:3], 1e300], "overflows float32"),
    (lambda a: [*a[:3], True], "expected a real number"),
    (lambda a: a[:3], "takes 4 arguments"),
])
def test_the_fast_path_refuses_what_the_full_check_refuses_with_its_message(fake_cupy, faulty_table, change, error):
    launcher = CupyLauncher(table=faulty_table)
    good = [FakeArray(np.zeros(4, np.float32)), FakeArray(np.zeros(4, np.float32)), 4, 1.0]
    launcher.launch("scale_ok", np.float32, *good)
    with pytest.raises((KernelArgTypeError, KernelArgValueError), match=error):
        launcher.launch("scale_ok", np.float32, *change(good))


def test_aliasing_is_checked_in_debug_mode(fake_cupy, faulty_table, monkeypatch):
    class Addressed(FakeArray):
        @property
        def __cuda_array_interface__(self):
            return self.a.__array_interface__

        @property
        def nbytes(self):
            return self.a.nbytes

    fake_cupy.ndarray = Addressed
    same = Addressed(np.zeros(4, np.float32))
    CupyLauncher(table=faulty_table).launch("scale_ok", np.float32, same, same, 4, 1.0)  # hot path: unchecked
    with pytest.raises(KernelArgValueError, match="overlap"):
        CupyLauncher(table=faulty_table, debug=True).launch("scale_ok", np.float32, same, same, 4, 1.0)
    monkeypatch.setenv("DUALNET_DEBUG_KERNELS", "1")
    with pytest.raises(KernelArgValueError, match="overlap"):
        CupyLauncher(table=faulty_table).launch("scale_ok", np.float32, same, same, 4, 1.0)


def test_the_source_is_read_once_per_process_and_each_kernel_looked_up_once(fake_cupy, faulty_table, monkeypatch):
    monkeypatch.setattr(launch, "_SOURCE_KEYS", {})
    reads = []
    original = faulty_table.read_source
    monkeypatch.setattr(faulty_table, "read_source", lambda s: reads.append(s) or original(s))
    launcher = CupyLauncher(table=faulty_table)
    x, y = FakeArray(np.zeros(4, np.float32)), FakeArray(np.zeros(4, np.float32))
    for _ in range(5):
        launcher.launch("scale_ok", np.float32, x, y, 4, 1.0)
    CupyLauncher(table=faulty_table).launch("scale_ok", np.float32, x, y, 4, 1.0)
    assert reads == ["faulty.cu"]
