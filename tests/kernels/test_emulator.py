"""The checking emulator catches planted faults; arguments are checked against the declaration."""

from __future__ import annotations

import numpy as np
import pytest

from dualnet.errors import DeviceUnavailableError
from dualnet.kernels import emulator
from dualnet.kernels.emulator import EmulatorLauncher, default_cache_dir, emulator_available
from dualnet.kernels.errors import (
    EmulatorUnavailableError,
    KernelArgTypeError,
    KernelArgValueError,
    KernelCheckError,
    KernelCompileError,
)
from dualnet.kernels.signatures import Kernel, KernelTable, array_in, array_out, int32

DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module", params=[(256, 65535), (32, 2)], ids=["block256", "block32x2"])
def checker(request, faulty_table):
    ok, why = emulator_available()
    if not ok:
        pytest.skip(why)
    block, max_blocks = request.param
    return EmulatorLauncher(block=block, max_blocks=max_blocks, check=True, table=faulty_table)


@pytest.fixture(scope="module")
def plain(faulty_table):
    ok, why = emulator_available()
    if not ok:
        pytest.skip(why)
    return EmulatorLauncher(table=faulty_table)


def xy(dtype, size=100):
    return np.arange(size, dtype=dtype), np.zeros(size, dtype)


# ----------------------------------------------------------------------------- planted faults

@pytest.mark.parametrize("dtype", DTYPES)
def test_correct_kernel_passes_check(checker, dtype):
    x, y = xy(dtype)
    checker.launch("scale_ok", dtype, x, y, 100, 2.0)
    np.testing.assert_array_equal(y, 2 * x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_off_by_one_write(checker, dtype):
    t = "float" if dtype == np.float32 else "double"
    with pytest.raises(KernelCheckError, match=rf"kernel off_by_one<{t}> wrote out of bounds of "
                                               r"parameter y .* at offset \+0 past the end"):
        checker.launch("off_by_one", dtype, *xy(dtype), 100)


@pytest.mark.parametrize("dtype", DTYPES)
def test_never_written_element(checker, dtype):
    with pytest.raises(KernelCheckError, match=r"kernel skip_last<\w+> never wrote 1 elements of "
                                               r"parameter y, first at flat index 99") as e:
        checker.launch("skip_last", dtype, *xy(dtype), 100)
    assert len(e.value.problems) == 1


def test_write_before_start(checker):
    with pytest.raises(KernelCheckError) as e:
        checker.launch("write_before", np.float32, *xy(np.float32), 100)
    msg = str(e.value)
    assert "kernel write_before<float> wrote out of bounds of parameter y" in msg
    assert "at offset -1 before the start" in msg
    assert "never wrote 1 elements of parameter y, first at flat index 99" in msg


def test_modified_input(checker):
    with pytest.raises(KernelCheckError, match=r"kernel writes_input<double> modified input "
                                               r"parameter x, first at flat index 2"):
        checker.launch("writes_input", np.float64, *xy(np.float64), 100)


@pytest.mark.parametrize("dtype", DTYPES)
def test_wrong_scalar_width(checker, dtype):
    x, y = xy(dtype)
    with pytest.raises(KernelArgTypeError, match=r"scale_ok.*parameter size.*int32.*int64"):
        checker.launch("scale_ok", dtype, x, y, np.int64(100), 2.0)
    other = np.float64 if dtype == np.float32 else np.float32
    with pytest.raises(TypeError, match=rf"scale_ok.*parameter alpha.*{np.dtype(dtype)}.*"
                                        rf"{np.dtype(other)}"):
        checker.launch("scale_ok", dtype, x, y, 100, other(2.0))
    with pytest.raises(TypeError, match=r"fill_long.*parameter size.*int64.*int32"):
        checker.launch("fill_long", dtype, y, np.int32(100), 1.0)


# ----------------------------------------------------------------------------- argument checks

def test_scalar_casts(plain):
    x, y = xy(np.float32)
    plain.launch("scale_ok", np.float32, x, y, np.int32(100), np.float32(3))
    np.testing.assert_array_equal(y, 3 * x)
    plain.launch("scale_ok", "float32", x, y, 100, 2)  # Python int for T
    np.testing.assert_array_equal(y, 2 * x)
    plain.launch("fill_long", np.float64, np.zeros(7), 7, 0.5)
    with pytest.raises(KernelArgTypeError, match=r"parameter size \(int\): expected an int, got float"):
        plain.launch("scale_ok", np.float32, x, y, 100.0, 2.0)
    with pytest.raises(KernelArgTypeError, match="parameter alpha"):
        plain.launch("scale_ok", np.float32, x, y, 100, True)
    with pytest.raises(KernelArgValueError, match=r"parameter size .* 2147483648 does not fit"):
        plain.launch("scale_ok", np.float32, x, y, 2**31, 2.0)
    with pytest.raises(ValueError, match=r"parameter alpha .* overflows float32"):
        plain.launch("scale_ok", np.float32, x, y, 100, 1e300)


def test_array_checks(plain, faulty_table):
    x, y = xy(np.float32)
    with pytest.raises(KernelArgTypeError, match=r"scale_ok<float>, parameter x .* expected dtype "
                                                 r"float32, got float64"):
        plain.launch("scale_ok", np.float32, x.astype(np.float64), y, 100, 1.0)
    with pytest.raises(KernelArgValueError, match=r"parameter y .* expected 100 elements \(size "
                                                  r"with size=100\), got 101"):
        plain.launch("scale_ok", np.float32, x, np.zeros(101, np.float32), 100, 1.0)
    with pytest.raises(KernelArgValueError, match="not C-contiguous"):
        plain.launch("scale_ok", np.float32, np.zeros(200, np.float32)[::2], y, 100, 1.0)
    frozen = y.copy()
    frozen.flags.writeable = False
    with pytest.raises(KernelArgValueError, match="parameter y .* read-only"):
        plain.launch("scale_ok", np.float32, x, frozen, 100, 1.0)
    with pytest.raises(KernelArgTypeError, match="expected a numpy array, got builtins.list"):
        plain.launch("scale_ok", np.float32, list(x), y, 100, 1.0)
    with pytest.raises(KernelArgTypeError, match=r"takes 4 arguments .* got 3"):
        plain.launch("scale_ok", np.float32, x, y, 100)
    with pytest.raises(KernelArgTypeError, match="no instantiation for dtype int32"):
        plain.launch("scale_ok", np.int32, x, y, 100, 1.0)
    with pytest.raises(KernelArgValueError, match=r"parameters x \(in\) and y \(out\) overlap"):
        plain.launch("scale_ok", np.float32, y, y, 100, 1.0)
    both = np.zeros(150, np.float32)
    with pytest.raises(KernelArgValueError, match="overlap"):
        plain.launch("scale_ok", np.float32, both[:100], both[50:], 100, 1.0)
    plain.launch("scale_ok", np.float32, both[:75], both[75:], 75, 1.0)  # adjacent is fine
    with pytest.raises(KeyError, match="no kernel named 'nope'"):
        plain.launch("nope", np.float32)
    np.testing.assert_array_equal(y, 0)  # nothing ran


def test_real_table_int_arrays_are_int32(emu):
    logits, probs, loss = np.zeros((4, 3)), np.empty((4, 3)), np.empty(4)
    with pytest.raises(TypeError, match=r"softmax_xent_forward<double>, parameter labels "
                                        r"\(const int\*, in\): expected dtype int32, got int64"):
        emu.launch("softmax_xent_forward", np.float64, logits, np.zeros(4, np.int64), probs, loss, 4, 3)


def test_zero_size_launch(checker):
    x, y = xy(np.float32, 0)
    checker.launch("scale_ok", np.float32, x, y, 0, 1.0)


# ----------------------------------------------------------------------------- compile and cache

def test_disk_cache_reuse(tmp_path, monkeypatch, faulty_table):
    compiles = emulator.stats["compiles"]
    x, y = xy(np.float64)
    EmulatorLauncher(table=faulty_table, cache_dir=tmp_path).launch("scale_ok", np.float64, x, y, 100, 2.0)
    assert emulator.stats["compiles"] == compiles + 1
    assert [p.suffix for p in tmp_path.iterdir()] == [".so"]  # no leftover temporary files

    # a fresh process would find the library on disk: g++ must not run again
    monkeypatch.setattr(emulator, "_LOADED", {})
    monkeypatch.setattr(emulator, "_compile", lambda *a: pytest.fail("g++ ran again"))
    hits = emulator.stats["disk_hits"]
    y[:] = 0
    EmulatorLauncher(table=faulty_table, cache_dir=tmp_path).launch("scale_ok", np.float64, x, y, 100, 2.0)
    assert emulator.stats["disk_hits"] == hits + 1
    np.testing.assert_array_equal(y, 2 * x)


def test_source_change_recompiles(tmp_path, faulty_table):
    src = tmp_path / "src"
    src.mkdir()
    code = faulty_table.read_source("faulty.cu")
    (src / "faulty.cu").write_text(code)
    table = KernelTable(list(faulty_table), source_dir=src)
    launcher = EmulatorLauncher(table=table, cache_dir=tmp_path / "cache")
    launcher.library("faulty.cu")
    (src / "faulty.cu").write_text(code + "\n// changed\n")
    launcher.library("faulty.cu")
    assert len(list((tmp_path / "cache").glob("faulty-*.so"))) == 2


def test_compile_error_names_file_and_log(tmp_path):
    (tmp_path / "broken.cu").write_text(
        "template <typename T>\n__global__ void broken(const T* x, T* y, int size) {\n"
        "    y[0] = undefined_thing;\n}\n")
    table = KernelTable([Kernel("broken", "broken.cu", (array_in("x", "size"),
                                array_out("y", "size"), int32("size")), "size")], tmp_path)
    launcher = EmulatorLauncher(table=table, cache_dir=tmp_path / "cache")
    with pytest.raises(KernelCompileError, match=r"(?s)broken\.cu.*broken\.cu:3.*undefined_thing"):
        launcher.launch("broken", np.float32, *xy(np.float32, 3), 3)


def test_unavailable_compiler(monkeypatch):
    monkeypatch.setenv("DUALNET_CXX", "no-such-compiler-dualnet")
    ok, why = emulator_available()
    assert not ok and "no-such-compiler-dualnet not found on PATH" in why and "apt-get install g++" in why
    with pytest.raises(EmulatorUnavailableError, match="not found on PATH") as e:
        EmulatorLauncher()
    assert isinstance(e.value, DeviceUnavailableError)


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("DUALNET_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "dualnet" / "emu"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "dualnet" / "emu"
    monkeypatch.setenv("DUALNET_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"


def test_launch_config_validated(faulty_table):
    with pytest.raises(ValueError, match="block"):
        EmulatorLauncher(block=0, table=faulty_table)
    with pytest.raises(ValueError, match="max_blocks"):
        EmulatorLauncher(max_blocks=0, table=faulty_table)
