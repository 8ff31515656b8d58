"""No input of at most 1 MB makes a command run longer than 10 s or take more than 500 MB resident
beyond its normal peak (the bombs of every family: see bombs.py, run in a child process)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
MAX_SECONDS, MAX_EXTRA_MB = 10.0, 500.0


@pytest.fixture(scope="module")
def costs(tmp_path_factory) -> dict:
    pytest.importorskip("resource")
    folder = tmp_path_factory.mktemp("bombs")
    for mode in ("make", "run"):
        proc = subprocess.run([sys.executable, str(HERE / "bombs.py"), mode, str(folder)], capture_output=True,
                              text=True, timeout=300, cwd=folder)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_bomb_finishes_within_10_seconds(costs):
    slow = {name: seconds for name, (code, seconds) in costs["bombs"].items() if seconds > MAX_SECONDS}
    assert not slow, slow


def test_every_bomb_stays_within_500_mb_beyond_the_normal_peak(costs):
    for command, group in costs["groups"].items():
        assert group["peak_mb"] - group["baseline_mb"] <= MAX_EXTRA_MB, (command, group)


def test_bombs_are_refused_or_handled_not_crashed(costs):
    # refused (1) or decoded within budget (0); never a usage error, a traceback or a signal
    assert all(code in (0, 1) for code, _ in costs["bombs"].values()), costs["bombs"]
    refused = {"one-bit-10000x10000.png", "jpeg-header-60000x60000.jpg", "conv-padding-1000.h5",
               "zeros-compressed.h5", "idx-zeros", "h5-huge-unwritten-datasets.h5", "p2-huge-header.pgm",
               "npy-huge-header.npy"}
    assert {name for name, (code, _) in costs["bombs"].items() if code == 1} >= refused
