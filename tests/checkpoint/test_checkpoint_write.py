"""Writing checkpoints: what save refuses, atomic replacement (a failed write keeps the previous file),
check_writable."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
from checkpoint_helpers import HISTORY, assert_same_parameters, no_temp_files, tiny

from dualnet import checkpoint as ck
from dualnet.checkpoint import writer
from dualnet.errors import CheckpointError
from dualnet.outputs import files as _atomic

# --- refusing to save -----------------------------------------------------------------------


def test_unserialisable_metadata_names_the_key(tmp_path):
    with pytest.raises(CheckpointError, match=r"m\.h5.*metadata 'bad'.*JSON"):
        ck.save(tiny(), tmp_path / "m.h5", good=1, bad=object())
    with pytest.raises(CheckpointError, match=r"history key 'loss'.*numbers"):
        ck.save(tiny(), tmp_path / "m.h5", history=[{"loss": "high"}])
    with pytest.raises(CheckpointError, match="rng_state"):
        ck.save(tiny(), tmp_path / "m.h5", rng_state={"gen": object()})
    assert list(tmp_path.iterdir()) == []


def test_non_finite_parameters_are_not_saved_over_a_good_file(tmp_path):
    good = tiny(seed=1)
    path = ck.save(good, tmp_path / "m.h5")
    bad = tiny(seed=2)
    bad[0].weight.data[0, 0, 0, 0] = np.nan
    with pytest.raises(CheckpointError, match=r"conv1\.weight.*non-finite"):
        ck.save(bad, path)
    assert_same_parameters(good, ck.read(path).model)


def test_save_to_a_directory_is_an_error(tmp_path):
    with pytest.raises(CheckpointError, match="existing directory"):
        ck.save(tiny(), tmp_path)


def test_save_creates_missing_folders(tmp_path):
    path = ck.save(tiny(), tmp_path / "a" / "b" / "m.h5")
    assert path.is_file()


# --- atomic writes --------------------------------------------------------------------------


@pytest.mark.parametrize("error", [RuntimeError("boom"), OSError(28, "No space left on device")])
def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path, monkeypatch, error):
    first = tiny(seed=1)
    path = ck.save(first, tmp_path / "m.h5", history=HISTORY)
    before = path.read_bytes()

    def write_half(f, data):  # parameters written, then the failure
        f.attrs["format"] = "dualnet-checkpoint"
        f.create_group("model/parameters").create_dataset("conv1.weight", data=np.zeros(3))
        raise error

    monkeypatch.setattr(writer, "_write", write_half)
    expected = CheckpointError if isinstance(error, OSError) else RuntimeError
    with pytest.raises(expected) as info:
        ck.save(tiny(seed=2), path, history=HISTORY[:1])
    if expected is CheckpointError:
        assert str(path) in str(info.value) and "No space left" in str(info.value)
    assert path.read_bytes() == before and no_temp_files(tmp_path)
    ckpt = ck.read(path)
    assert_same_parameters(first, ckpt.model) and ckpt.history == HISTORY


def test_failed_rename_keeps_previous_file(tmp_path, monkeypatch):
    first = tiny(seed=1)
    path = ck.save(first, tmp_path / "m.h5")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_atomic.os, "replace", refuse)
    with pytest.raises(CheckpointError, match=r"m\.h5.*Permission denied"):
        ck.save(tiny(seed=2), path)
    monkeypatch.undo()
    assert no_temp_files(tmp_path)
    assert_same_parameters(first, ck.read(path).model)


def test_interrupt_mid_write_keeps_previous_file(tmp_path, monkeypatch):
    first = tiny(seed=1)
    path = ck.save(first, tmp_path / "m.h5")
    calls = []
    real = h5py.Group.create_dataset

    def interrupt(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", interrupt)
    with pytest.raises(KeyboardInterrupt):
        ck.save(tiny(seed=2), path)
    monkeypatch.undo()
    assert no_temp_files(tmp_path)
    assert_same_parameters(first, ck.read(path).model)


# --- check_writable ---------------------------------------------------------------------------


def test_check_writable_creates_missing_folders(tmp_path):
    target = tmp_path / "runs" / "deep" / "model.h5"
    assert ck.check_writable(target) == target
    assert target.parent.is_dir() and not target.exists() and no_temp_files(target.parent)
    assert ck.check_writable(str(target)) == target  # existing folder: fine


def test_check_writable_refuses_unwritable_folder(tmp_path):
    if os.geteuid() == 0:  # root ignores permissions: use a regular file as the folder instead
        blocker = tmp_path / "file"
        blocker.write_text("x")
        target = blocker / "sub" / "model.h5"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = locked / "model.h5"
    try:
        with pytest.raises(CheckpointError) as info:
            ck.check_writable(target)
    finally:
        if os.geteuid() != 0:
            locked.chmod(0o700)
    message = str(info.value)
    assert message.startswith(f"cannot write checkpoint to {target}: ") and message.endswith("; choose another --out")


def test_check_writable_refuses_a_directory(tmp_path):
    with pytest.raises(CheckpointError, match=r"existing directory; choose another --out"):
        ck.check_writable(tmp_path)
