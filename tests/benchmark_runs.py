"""A benchmarks/ script run as a user runs it, in a child process: its exit status checked (stderr
shown when it failed) and, when it wrote one, its JSON read back."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_benchmark(script: str, *args: object, timeout: int = 300) -> subprocess.CompletedProcess:
    """benchmarks/`script` with `args`; fails the test unless it exits 0."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc


def benchmark_json(script: str, out: pathlib.Path, *args: object, flag: str = "--json",
                   timeout: int = 300) -> tuple[dict, subprocess.CompletedProcess]:
    """run_benchmark with `flag out` added; (the JSON it wrote to out, the finished process)."""
    proc = run_benchmark(script, *args, flag, out, timeout=timeout)
    return json.loads(out.read_text()), proc
