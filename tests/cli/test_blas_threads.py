"""The CLI's default BLAS thread count (dualnet_cli/blas_threads.py): one core left to the rest of
the machine, a count the user set kept, and set before NumPy loads OpenBLAS."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dualnet_cli import blas_threads


def test_default_leaves_one_core_and_keeps_at_least_one_thread():
    assert [blas_threads.default_threads(c) for c in (1, 2, 3, 8)] == [1, 1, 2, 7]


def test_choose_sets_the_default_and_marks_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(blas_threads, "usable_cores", lambda: 4)
    env: dict[str, str] = {}
    assert blas_threads.choose(env) == 3
    assert env == {"OPENBLAS_NUM_THREADS": "3", blas_threads.CHOSEN_MARK: "3"}


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
