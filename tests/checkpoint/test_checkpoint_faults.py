"""Faults while a checkpoint is written: a full disk gives one CheckpointError line and a clean exit,
keeps the previous file and leaves no temporary file; abandoned temporary files are cleaned up."""

from __future__ import annotations

import errno
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import dualnet as dn
from dualnet.errors import CheckpointError
from dualnet.outputs import files as _atomic

CORPUS = pathlib.Path(__file__).resolve().parents[1] / "reliability" / "corpus"


def leftovers(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


class FullDisk:
    """An open() (or os.fdopen) for the writer whose files fail every write with ENOSPC after `room` bytes."""

    def __init__(self, room: int):
        self.room = room

    def __call__(self, path, mode="r", *args, **kwargs):
        real = open(path, mode, *args, **kwargs)
        room = self.room

        class File:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                real.close()

            def write(self, data):
                if len(data) > room:
                    real.write(bytes(data[:room]))
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return real.write(data)

        return File()


def test_a_full_disk_gives_one_checkpoint_error_and_keeps_the_previous_file(tmp_path, monkeypatch):
    model = dn.models.lenet5()
    path = dn.save(model, tmp_path / "run.h5")
    before = path.read_bytes()
    monkeypatch.setattr(_atomic.os, "fdopen", FullDisk(room=4096))  # the guarded writer opens its temporary so
    with pytest.raises(CheckpointError, match=r"cannot write checkpoint to .*run\.h5: no space left on device; "
                                              r"the previous file is kept"):
        dn.save(dn.models.lenet5(seed=1), path)
    assert path.read_bytes() == before and leftovers(tmp_path) == []


def _run(code: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120)


FILE_LIMIT = """
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write beyond the limit then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE behaviour checked on Linux")
def test_a_real_failing_write_exits_cleanly_without_a_crash_at_teardown(tmp_path):
    # HDF5 writing to the disk itself crashed the interpreter at exit (a half-closed file)
    code = FILE_LIMIT.format(limit=50_000) + "import dualnet as dn\ndn.save(dn.models.lenet5(), 'big.h5')\n"
    proc = _run(code, tmp_path)
    assert proc.returncode == 1 and proc.returncode >= 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("dualnet.errors.CheckpointError: cannot write checkpoint")
    assert "Exception ignored" not in proc.stderr and "Segmentation" not in proc.stderr
    assert leftovers(tmp_path) == [] and not (tmp_path / "big.h5").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE behaviour checked on Linux")
@pytest.mark.parametrize("interrupt", [False, True], ids=["epoch-save", "interrupt-save"])
def test_train_on_a_full_disk_gives_one_line_and_keeps_the_checkpoint(tmp_path, interrupt):
    ckpt = shutil.copy(CORPUS / "good" / "tiny.h5", tmp_path / "tiny.h5")
    before = pathlib.Path(ckpt).read_bytes()
    lenet = tmp_path / "lenet.h5"
    dn.train_run(dn.RunConfig(epochs=2, limit=64, validation=16), out=lenet, device="cpu") if interrupt else None
    target = lenet if interrupt else pathlib.Path(ckpt)
    before = target.read_bytes()
    if interrupt:  # SIGINT in the first step: the interrupt's own save meets the full disk
        dn.checkpoint.read(lenet)
        # the loss of fit's first step sends the SIGINT (inside fit, once its handlers are set)
        code = (FILE_LIMIT.format(limit=1000) + "import os, signal\n"
                "from dualnet.losses import SoftmaxCrossEntropy as L\nreal = L.forward\n"
                "L.forward = lambda *a, **k: (os.kill(os.getpid(), signal.SIGINT), real(*a, **k))[1]\n"
                "from dualnet_cli.main import main\n"
                f"main(['train', '--resume', {str(lenet)!r}, '--epochs', '3', '--device', 'cpu'])\n")
    else:
        code = (FILE_LIMIT.format(limit=1000) + "from dualnet_cli.main import main\n"
                f"main(['train', '--resume', {str(ckpt)!r}, '--epochs', '3', '--device', 'cpu'])\n")
    proc = _run(code, tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[-1].startswith("dualnet: error: cannot write checkpoint to") and "File too large" in lines[-1]
    assert target.read_bytes() == before and leftovers(tmp_path) == []


def test_stale_temporary_files_are_removed_on_the_next_save(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale_dead = tmp_path / f".run.h5.tmp-{dead}-deadbeef"
    stale_old = tmp_path / ".run.h5.tmp-1-0badf00d"  # pid 1 lives, but the file is an hour old
    fresh_live = tmp_path / ".run.h5.tmp-1-12345678"  # a live writer, just started: kept
    other = tmp_path / f".other.h5.tmp-{dead}-deadbeef"  # another target's: not ours to judge
    for p in (stale_dead, stale_old, fresh_live, other):
        p.write_bytes(b"half a checkpoint")
    hour_ago = time.time() - 3600
    os.utime(stale_old, (hour_ago, hour_ago))
    dn.save(dn.models.lenet5(), tmp_path / "run.h5")
    assert leftovers(tmp_path) == sorted([fresh_live.name, other.name])


def test_a_writer_killed_mid_save_leaves_a_file_the_next_save_removes(tmp_path):
    # the child stops inside the write (SIGKILL from itself), as a killed `dualnet train` would
    code = ("import os, signal\nimport dualnet as dn\nfrom dualnet.outputs import files\n"
            "class Killed:\n    def __init__(self, p, m): self.f = open(p, m)\n"
            "    def __enter__(self): return self\n    def __exit__(self, *a): pass\n"
            "    def write(self, b): self.f.write(b[:100]); self.f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
            "files.os.fdopen = Killed\ndn.save(dn.models.lenet5(), 'run.h5')\n")
    proc = _run(code, tmp_path)
    assert proc.returncode == -9
    assert len(leftovers(tmp_path)) == 1
    dn.save(dn.models.lenet5(), tmp_path / "run.h5")
    assert leftovers(tmp_path) == [] and dn.load(tmp_path / "run.h5")


def _tmpfs(folder: pathlib.Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def test_a_real_small_tmpfs_fills_up_cleanly(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _tmpfs(disk, "96k"):
        pytest.skip("needs root and a working `mount -t tmpfs` (a container without CAP_SYS_ADMIN has neither)")
    try:
        small = dn.Sequential(dn.layers.Flatten(), dn.layers.Linear(784, 10, seed=0), input_shape=(1, 28, 28))
        path = dn.save(small, disk / "run.h5")
        before = path.read_bytes()
        with pytest.raises(CheckpointError, match="no space left on device; the previous file is kept"):
            dn.save(dn.models.lenet5(), path)
        assert path.read_bytes() == before and leftovers(disk) == []
        np.testing.assert_array_equal(dn.load(path).layers[1].weight.data, small.layers[1].weight.data)
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_stale_files_of_a_live_writer_are_kept(tmp_path):
    mine = tmp_path / f".run.h5.tmp-{os.getpid()}-abcdef01"
    mine.write_bytes(b"")
    assert _atomic.remove_stale(tmp_path / "run.h5") == []
    assert mine.exists()
