"""The CLI's default BLAS thread count and kernels (dualnet_cli/blas_threads.py): every usable
core (the CPU table takes them as its own threads), AVX-512 kernels on AMD CPUs that have it, what
the user set kept, and all of it set before NumPy loads OpenBLAS."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dualnet_cli import blas_threads


def test_default_takes_every_usable_core_and_at_least_one_thread():
    assert [blas_threads.default_threads(c) for c in (0, 1, 2, 3, 8)] == [1, 1, 2, 3, 8]


def test_choose_sets_the_default_and_marks_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(blas_threads, "usable_cores", lambda: 4)
    env: dict[str, str] = {}
    assert blas_threads.choose(env) == 4
    assert env == {"OPENBLAS_NUM_THREADS": "4", blas_threads.CHOSEN_MARK: "4"}


@pytest.mark.parametrize("var", blas_threads.THREAD_VARIABLES)
def test_a_count_the_user_set_is_kept(var: str):
    env = {var: "2"}
    assert blas_threads.choose(env) is None
    assert env == {var: "2"}


def _threads_in_a_fresh_cli_process(**extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in (*blas_threads.THREAD_VARIABLES, blas_threads.CHOSEN_MARK)}
    env.update(extra)
    code = "import dualnet_cli, os; print(os.environ.get('OPENBLAS_NUM_THREADS'))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_cli_package_sets_the_count_before_numpy_loads():
    assert _threads_in_a_fresh_cli_process() == str(blas_threads.default_threads(blas_threads.usable_cores()))
    assert _threads_in_a_fresh_cli_process(OPENBLAS_NUM_THREADS="2") == "2"


def test_a_process_that_loaded_numpy_first_is_left_as_it_is():
    # this test process imported NumPy (and dualnet_cli) already: the import changed nothing here
    assert os.environ.get(blas_threads.CHOSEN_MARK) is None


AVX512 = "fpu sse2 avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl"


def _cpuinfo(tmp_path, vendor: str, flags: str) -> str:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nvendor_id\t: {vendor}\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    return str(path)


def test_amd_with_avx512_gets_the_skylakex_kernels(tmp_path):
    env: dict[str, str] = {}
    assert blas_threads.choose_kernel(env, _cpuinfo(tmp_path, "AuthenticAMD", AVX512)) == "SkylakeX"
    assert env == {"OPENBLAS_CORETYPE": "SkylakeX"}


@pytest.mark.parametrize("vendor, flags", [("GenuineIntel", AVX512), ("AuthenticAMD", AVX512.replace(" avx512bw", "")),
                                           ("AuthenticAMD", "fpu sse2 avx2 fma")])
def test_intel_or_a_cpu_without_the_avx512_subsets_is_left_to_openblas(tmp_path, vendor, flags):
    env: dict[str, str] = {}
    assert blas_threads.choose_kernel(env, _cpuinfo(tmp_path, vendor, flags)) is None
    assert env == {}


def test_a_kernel_the_user_chose_or_a_missing_cpuinfo_is_kept(tmp_path):
    env = {"OPENBLAS_CORETYPE": "Haswell"}
    assert blas_threads.choose_kernel(env, _cpuinfo(tmp_path, "AuthenticAMD", AVX512)) is None
    assert env == {"OPENBLAS_CORETYPE": "Haswell"}
    assert blas_threads.choose_kernel({}, str(tmp_path / "absent")) is None


def test_the_cli_package_sets_the_kernel_where_the_machine_qualifies():
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    code = "import dualnet_cli, os; print(os.environ.get('OPENBLAS_CORETYPE'))"
    got = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert got.strip() == str(blas_threads.choose_kernel({}))
