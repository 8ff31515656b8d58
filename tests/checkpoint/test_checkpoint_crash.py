"""Crash safety: a writer killed with SIGKILL at random moments never leaves a broken checkpoint."""

from __future__ import annotations

import os
import pathlib
import random
import signal
import subprocess
import sys

import pytest

import dualnet
from dualnet import checkpoint as ck
from dualnet.layers import Linear

KILLS = 50

# saves forever, alternating two models so that the file's content keeps changing
WRITER = """
import sys
import h5py  # imported before 'ready' so that the kills land among the saves
from dualnet.checkpoint import save
from dualnet.layers import Linear
from dualnet.layers import Sequential

def make(seed):
    return Sequential(Linear(256, 128, seed=seed), Linear(128, 10, seed=seed + 1))

models = [make(1), make(2)]
# one save elsewhere first: its lazy imports (the read-back check) would otherwise take the whole
# kill window on a loaded machine, and no save of the target would ever complete
import os, tempfile, time
t0 = time.perf_counter()
save(models[0], os.path.join(tempfile.mkdtemp(), "warm.h5"), which=0, count=0)
print(f"ready {time.perf_counter() - t0:.6f}", flush=True)  # how long one save takes on this machine now
i = 1
while True:
    save(models[i % 2], sys.argv[1], which=i % 2, count=i)
    i += 1
"""


def make(seed):
    return dualnet.Sequential(Linear(256, 128, seed=seed), Linear(128, 10, seed=seed + 1))


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_sigkill_during_saves_never_breaks_the_checkpoint(tmp_path):
    target = tmp_path / "model.h5"
    states = [{n: p.data.copy() for n, p in make(seed).named_parameters()} for seed in (1, 2)]
    ck.save(make(1), target, which=0, count=0)
    root = str(pathlib.Path(dualnet.__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    rnd = random.Random(20240611)
    seen_counts, changed = set(), 0
    for kill in range(KILLS):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, text=True)
        try:
            line = proc.stdout.readline()
            word, _, took = line.strip().partition(" ")
            if word != "ready":
                proc.kill()
                pytest.fail(f"writer failed to start: {line!r} {proc.stderr.read()}")
            try:
                proc.wait(timeout=rnd.uniform(0.0, max(0.08, 4 * float(took))))  # kills land within ~4 saves
            except subprocess.TimeoutExpired:
                pass
            assert proc.poll() is None, f"writer died on its own: {proc.stderr.read()}"
        finally:
            proc.kill()  # SIGKILL on POSIX
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        ckpt = ck.read(target)  # must load, whatever the moment of the kill
        which = ckpt.metadata["which"]
        params = dict(ckpt.model.named_parameters())
        assert list(params) == list(states[which])
        for name, expected in states[which].items():
            got = params[name].data
            assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes(), (kill, name)
        seen_counts.add(ckpt.metadata["count"])
        changed += ckpt.metadata["count"] > 0
        # leftovers of interrupted writes are hidden temp files, never the checkpoint itself
        for p in tmp_path.iterdir():
            assert p == target or (p.name.startswith(".model.h5.tmp-") and p.name != target.name), p.name
    assert changed >= KILLS // 5, "the writer hardly ever completed a save; the test exercises nothing"
    assert len(seen_counts) > 1
