"""Launching small MPI jobs from tests: where mpiexec is, the pinned environment, rank processes.

Tests that need MPI skip, naming the reason, where mpi4py or mpiexec is missing (CI installs both
through the `mpi` extra).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

import pytest

from dualnet.distributed.job import mpiexec_path

HERE = pathlib.Path(__file__).parent


def mpiexec() -> str:
    """The mpiexec next to this Python (the MPICH wheel puts it there), else on PATH; skips without one."""
    pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install \".[mpi]\")")
    found = mpiexec_path()
    if not found:
        pytest.skip("no mpiexec next to this Python or on PATH (pip install \".[mpi]\" brings MPICH's)")
    return found


def pinned_env() -> dict[str, str]:
    """One BLAS thread per rank: float32 sums, and so the tolerances, depend on the thread count."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONHASHSEED="0")
    return env


def launch(args: list[str], n: int = 2, cwd: pathlib.Path | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen([mpiexec(), "-n", str(n), *args], cwd=cwd, env=pinned_env(), text=True, **popen)


def run(args: list[str], n: int = 2, cwd: pathlib.Path | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    proc = launch(args, n, cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the MPI job did not end within {timeout} s:\n{out}\n{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def worker(*args: str) -> list[str]:
    """The command line of dist_worker.py (run by each rank)."""
    return [sys.executable, str(HERE / "dist_worker.py"), *args]


def rank_pids(job: subprocess.Popen, n: int = 2, timeout: float = 60) -> dict[int, int]:
    """{rank: pid} of the job's rank processes (descendants of mpiexec whose environment sets PMI_RANK)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found: dict[int, int] = {}
        for pid in _descendants(job.pid):
            try:
                env = pathlib.Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            for item in env:
                if item.startswith(b"PMI_RANK="):
                    found[int(item[9:])] = pid
        if len(found) == n:
            return found
        if job.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"could not find the {n} rank processes of the MPI job")


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
