"""No dualnet command opens a file its arguments did not name, and none blocks on a non-regular file.

A temporary secret file is made reachable from a checkpoint or a data file through each HDF5
indirection (external storage, an external link, a soft link to an external link, a virtual
dataset, a virtual dataset whose source is missing); every command that reads the file must
refuse it in one line naming the dataset or link, and the secret's bytes must appear in no
output and no file the command wrote. FIFOs (and a FIFO behind external storage) are refused
at once instead of blocking in open().
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import h5py
import numpy as np
import pytest

import dualnet as dn
from dualnet.errors import CheckpointError, DataError

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_corpus import IMAGES, LABELS, save_checkpoint  # noqa: E402

BIAS = "model/parameters/fc1.bias"  # (10,) float32 of the corpus's tiny model
# distinctive finite float32 values: if they reach an output, the secret leaked
SECRET = np.array([31337.25, -4242.5, 1234.125, 777.75, 9999.5, -31.125, 2718.25, 3141.5, 1618.0, 1414.5],
                  np.float32)
DIGIT = HERE / "corpus" / "good" / "digit.png"


@pytest.fixture
def secret(tmp_path) -> dict:
    """A raw secret file and an HDF5 secret file holding the same bytes (dataset /data)."""
    folder = tmp_path / "private"
    folder.mkdir()
    raw = folder / "secret.bin"
    raw.write_bytes(SECRET.tobytes())
    h5 = folder / "secret.h5"
    with h5py.File(h5, "w") as f:
        f["data"] = SECRET
        f["images"] = IMAGES
        f["labels"] = LABELS.astype(np.int64)
    return {"raw": raw, "h5": h5}


def _vds(f, name: str, source: pathlib.Path, key: str, shape, dtype) -> None:
    layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
    layout[...] = h5py.VirtualSource(str(source), key, shape=shape)
    f.create_virtual_dataset(name, layout, fillvalue=0)


def indirect(f, name: str, how: str, secret: dict, key: str, shape, dtype) -> None:
    """Replace dataset `name` of open file `f` by one that reaches the secret through `how`."""
    if name in f:
        del f[name]
    if how == "external-storage":
        f.create_dataset(name, shape=shape, dtype=dtype,
                         external=[(str(secret["raw"]), 0, int(np.prod(shape)) * np.dtype(dtype).itemsize)])
    elif how == "external-link":
        f[name] = h5py.ExternalLink(str(secret["h5"]), "/" + key)
    elif how == "soft-link-to-external-link":
        f["elsewhere"] = h5py.ExternalLink(str(secret["h5"]), "/" + key)
        f[name] = h5py.SoftLink("/elsewhere")
    elif how == "virtual-dataset":
        _vds(f, name, secret["h5"], key, shape, dtype)
    elif how == "virtual-dataset-missing-source":
        _vds(f, name, secret["h5"].with_name("gone.h5"), key, shape, dtype)
    else:
        raise AssertionError(how)


HOWS = ["external-storage", "external-link", "soft-link-to-external-link", "virtual-dataset",
        "virtual-dataset-missing-source"]


def evil_checkpoint(tmp_path, how: str, secret: dict) -> pathlib.Path:
    path = save_checkpoint(tmp_path / f"ckpt-{how}.h5")
    with h5py.File(path, "r+") as f:
        indirect(f, BIAS, how, secret, "data", (10,), np.float32)
    return path


def evil_data(tmp_path, how: str, secret: dict) -> pathlib.Path:
    path = tmp_path / f"data-{how}.h5"
    with h5py.File(path, "w") as f:
        f["labels"] = LABELS.astype(np.int64)
        if how == "external-storage":  # raw bytes: the images are the secret's uint8 bytes
            f.create_dataset("images", shape=(1, 5, 8), dtype=np.uint8,
                             external=[(str(secret["raw"]), 0, 40)])
            del f["labels"]
            f["labels"] = np.zeros(1, np.int64)
        else:
            indirect(f, "images", how, secret, "images", IMAGES.shape, np.uint8)
    return path


def _leaked(tmp_path: pathlib.Path, *texts: str) -> list[str]:
    """Outputs that show the secret: printed values, or its bytes in a file the command wrote."""
    found = [t for t in texts if "31337" in t]
    for path in tmp_path.rglob("*"):
        written = path.is_file() and "private" not in path.parts and not path.name.startswith(("ckpt-", "data-"))
        if written and SECRET.tobytes()[:16] in path.read_bytes():
            found.append(str(path))
    return found


def run_cli(args: list[str], cwd: pathlib.Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from dualnet_cli.main import main; main()", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout)


def assert_refused(proc: subprocess.CompletedProcess, names: str) -> None:
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("dualnet: error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert names in lines[0], lines[0]


# --- the library refuses, naming the dataset or link, before reading ---------------------------


@pytest.mark.parametrize("how", HOWS)
def test_checkpoint_reaching_outside_itself_is_refused_naming_the_link(tmp_path, secret, how):
    path = evil_checkpoint(tmp_path, how, secret)
    where = "/elsewhere" if how.startswith("soft") else "/" + BIAS
    with pytest.raises(CheckpointError, match=f"checkpoint {path}: .*{where}"):
        dn.checkpoint.read(path)


@pytest.mark.parametrize("how", HOWS)
def test_data_file_reaching_outside_itself_is_refused_naming_the_link(tmp_path, secret, how):
    path = evil_data(tmp_path, how, secret)
    where = "/elsewhere" if how.startswith("soft") else "/images"
    with pytest.raises(DataError, match=f"{path}: .*{where}"):
        dn.data.load(path, "all-train")


def test_a_soft_link_inside_the_file_is_still_read(tmp_path):
    path = tmp_path / "linked.h5"
    with h5py.File(path, "w") as f:
        f["train/images"], f["train/labels"] = IMAGES, LABELS.astype(np.int64)
        f["images"] = h5py.SoftLink("/train/images")
        f["labels"] = h5py.SoftLink("/train/labels")
    assert len(dn.data.load(path, "all-train")) == len(IMAGES)


def test_a_dangling_soft_link_is_refused(tmp_path):
    path = tmp_path / "dangling.h5"
    with h5py.File(path, "w") as f:
        f["images"], f["labels"] = IMAGES, LABELS.astype(np.int64)
        f["extra"] = h5py.SoftLink("/nowhere/at/all")
    with pytest.raises(DataError, match="/extra is a soft link to '/nowhere/at/all', which does not exist"):
        dn.data.load(path, "all-train")


# --- every command refuses, and the secret reaches no output ----------------------------------


def _commands(ckpt: pathlib.Path, out: pathlib.Path) -> dict[str, list[str]]:
    return {"predict": ["predict", str(ckpt), str(DIGIT)],
            "evaluate": ["evaluate", str(ckpt), "--device", "cpu", "--limit", "10"],
            "resume": ["train", "--resume", str(ckpt), "--epochs", "3", "--device", "cpu", "--out",
                       str(out / "resumed.out.h5")],
            "featuremaps": ["featuremaps", str(ckpt), str(DIGIT), "-o", str(out / "maps.png")],
            "filters": ["filters", str(ckpt), "--layer", "1", "-o", str(out / "filters.png")]}


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("command", ["predict", "evaluate", "resume", "featuremaps", "filters"])
def test_no_command_reads_a_secret_through_a_checkpoint(tmp_path, secret, how, command):
    if command in ("featuremaps", "filters"):
        pytest.importorskip("matplotlib")
    ckpt = evil_checkpoint(tmp_path, how, secret)
    proc = run_cli(_commands(ckpt, tmp_path)[command], tmp_path)
    assert_refused(proc, "/elsewhere" if how.startswith("soft") else BIAS)
    assert not _leaked(tmp_path, proc.stdout, proc.stderr)
    assert not (tmp_path / "resumed.out.h5").exists() and not (tmp_path / "maps.png").exists()


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_no_command_reads_a_secret_through_a_data_file(tmp_path, secret, how, command):
    data = evil_data(tmp_path, how, secret)
    good = HERE / "corpus" / "good" / "tiny.h5"
    args = {"train": ["train", "--data", str(data), "--epochs", "1", "--device", "cpu", "--validation", "0",
                      "--out", str(tmp_path / "run.out.h5")],
            "evaluate": ["evaluate", str(good), "--data", str(data), "--split", "all-train", "--device", "cpu"]}
    proc = run_cli(args[command], tmp_path)
    assert_refused(proc, "/elsewhere" if how.startswith("soft") else "/images")
    assert not _leaked(tmp_path, proc.stdout, proc.stderr)
    assert not (tmp_path / "run.out.h5").exists()


# --- FIFOs and other non-regular files: refused at once, never opened --------------------------


@pytest.fixture
def fifo(tmp_path) -> pathlib.Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    path = tmp_path / "pipe.h5"
    os.mkfifo(path)
    return path


def test_a_fifo_as_checkpoint_is_refused_without_blocking(fifo, tmp_path):
    for args in (["evaluate", str(fifo), "--device", "cpu"], ["predict", str(fifo), str(DIGIT)],
                 ["train", "--resume", str(fifo), "--device", "cpu"]):
        proc = run_cli(args, tmp_path, timeout=30)
        assert_refused(proc, f"{fifo}: cannot read: it is a FIFO (named pipe), not a regular checkpoint file")


def test_a_fifo_as_image_or_data_is_refused_without_blocking(fifo, tmp_path):
    good = str(HERE / "corpus" / "good" / "tiny.h5")
    proc = run_cli(["predict", good, str(fifo)], tmp_path, timeout=30)
    assert_refused(proc, "it is a FIFO (named pipe), not a regular image file")
    proc = run_cli(["train", "--data", str(fifo), "--device", "cpu", "--epochs", "1"], tmp_path, timeout=30)
    assert_refused(proc, f"{fifo}: is a FIFO (named pipe), not a regular file or a directory")


def test_a_fifo_inside_an_idx_folder_is_refused_without_blocking(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    folder = tmp_path / "idx"
    folder.mkdir()
    os.mkfifo(folder / "train-images-idx3-ubyte")
    with pytest.raises(DataError, match="train-images-idx3-ubyte: cannot read: it is a FIFO"):
        dn.data.load(folder, "train")


def test_external_storage_on_a_fifo_is_refused_without_blocking(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    secret = {"raw": pipe, "h5": pipe}
    ckpt = evil_checkpoint(tmp_path, "external-storage", secret)
    proc = run_cli(["predict", str(ckpt), str(DIGIT)], tmp_path, timeout=30)
    assert_refused(proc, "keeps its data in external files")


def test_a_device_is_refused_as_a_checkpoint(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    with pytest.raises(CheckpointError, match="it is a character device"):
        dn.checkpoint.read("/dev/zero")
