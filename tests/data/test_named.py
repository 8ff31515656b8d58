"""Named datasets (dualnet.data.named): found locally or downloaded from mirrors, verified, placed
atomically, and every mirror failure refused in one line with no partial file left in the cache. The
mirrors are a local HTTP server on 127.0.0.1 serving small files in the datasets' real formats; no
test reaches outside this machine."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import tarfile

import numpy as np
import pytest
from http_fixture import Server
from idx_files import idx_bytes

import dualnet as dn
from dualnet.data import cifar, named
from dualnet.data.download import DownloadError, RemoteFile

CIFAR_RECORDS = 4  # per batch file, instead of 10,000


def gz_file(name: str, payload: bytes) -> tuple[RemoteFile, bytes]:
    body = gzip.compress(payload, mtime=0)
    return RemoteFile(name, None, hashlib.md5(body).hexdigest(), hashlib.sha256(payload).hexdigest(),
                      len(payload), cap=1 << 20), body


def fashion_files(n_train: int = 36, n_test: int = 12) -> dict[str, tuple[RemoteFile, bytes]]:
    rng = np.random.default_rng(0)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte.gz"
            out[name] = gz_file(name, idx_bytes(array))
    return out


def cifar_archive() -> bytes:
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        members = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin", "batches.meta.txt"]
        for name in members:
            if name.endswith(".bin"):
                labels = rng.integers(0, 10, CIFAR_RECORDS, dtype=np.uint8)
                pixels = rng.integers(0, 256, (CIFAR_RECORDS, 3072), dtype=np.uint8)
                data = np.concatenate([labels[:, None], pixels], axis=1).tobytes()
            else:
                data = b"airplane\nautomobile\n"
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """Fashion-MNIST and CIFAR-10 as small real-format files on a loopback server; the registry's
    checksums are those of these files, the cache and $DUALNET_DATA are private, no system folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("DUALNET_DATA", raising=False)
    fashion = fashion_files()
    archive = cifar_archive()
    cifar_spec = RemoteFile("cifar-10-binary.tar.gz", len(archive), hashlib.md5(archive).hexdigest(), cap=1 << 20)
    monkeypatch.setitem(named.NAMED, "fashion-mnist", dataclasses.replace(
        named.FASHION_MNIST, files=tuple(spec for spec, _ in fashion.values()), system_dirs=()))
    monkeypatch.setitem(named.NAMED, "cifar10", dataclasses.replace(named.CIFAR10, files=(cifar_spec,)))
    monkeypatch.setattr(cifar, "RECORDS_PER_BATCH", CIFAR_RECORDS)
    server = Server({**{name: body for name, (_, body) in fashion.items()}, cifar_spec.name: archive})
    monkeypatch.setenv(named.MIRRORS_ENV, server.url("good"))
    yield server
    server.close()


def test_fashion_mnist_downloads_once_then_loads_from_the_cache(mirror, tmp_path, capsys):
    train = dn.data.load("fashion-mnist", "train")
    assert "fashion-mnist: not found locally" in capsys.readouterr().err
    assert train.shape == (1, 28, 28) and train.num_classes == 10 and len(train) == 30  # a sixth is val
    served = len(mirror.requests)
    test = dn.data.load("fashion-mnist", "test")
    assert len(test) == 12 and len(mirror.requests) == served  # found in the cache: nothing downloaded
    cached = tmp_path / "xdg" / "dualnet" / "fashion-mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(f.name for f in named.NAMED["fashion-mnist"].files)
    assert dn.data.source_metadata("fashion-mnist")["class_names"][9] == "Ankle boot"


def test_cifar10_is_read_from_the_binary_archive_into_an_hdf5_file(mirror, tmp_path):
    train = dn.data.load("cifar10", "all-train")
    test = dn.data.load("cifar10", "test", stream=True)
    assert train.shape == (3, 32, 32) and len(train) == 5 * CIFAR_RECORDS and len(test) == CIFAR_RECORDS
    raw = cifar.read_cifar_binary(tmp_path / "xdg" / "dualnet" / "cifar10" / "cifar-10-binary.tar.gz")
    assert np.array_equal(train.images, raw["train"][0] / np.float32(255))
    assert np.array_equal(train.labels, raw["train"][1])
    test.close()


def test_files_in_dualnet_data_are_used_and_a_wrong_one_is_refused(mirror, tmp_path, monkeypatch):
    folder = tmp_path / "mine" / "fashion-mnist"
    folder.mkdir(parents=True)
    for spec, body in fashion_files().values():
        (folder / spec.name).write_bytes(gzip.compress(gzip.decompress(body), mtime=1))  # recompressed
    monkeypatch.setenv("DUALNET_DATA", str(tmp_path / "mine"))
    assert named.locate("fashion-mnist") == folder and mirror.requests == []
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00" * 20))
    with pytest.raises(dn.DataError, match="t10k-labels-idx1-ubyte.gz: wrong content"):
        named.locate("fashion-mnist")


def test_a_partial_download_is_resumed_with_a_range_request(mirror, tmp_path):
    spec, body = fashion_files()["train-images-idx3-ubyte.gz"]
    cache = tmp_path / "xdg" / "dualnet" / "fashion-mnist"
    cache.mkdir(parents=True)
    (cache / f".{spec.name}.partial").write_bytes(body[:1000])  # what a Ctrl-C left
    named.fetch("fashion-mnist")
    assert (cache / spec.name).read_bytes() == body
    assert (f"/good/{spec.name}", "bytes=1000-") in mirror.requests
    assert not list(cache.glob(".*"))


@pytest.mark.parametrize("mode, problem", [
    ("html", "answered with an HTML page"),
    ("forbidden", "HTTP 403"),
    ("truncated", "connection closed after"),
    ("wrong", "wrong content"),
    ("stall", "timed out"),
    ("huge", "more than the"),
])
def test_every_mirror_failure_is_one_line_naming_the_manual_route_and_leaves_no_partial_file(
        mirror, tmp_path, monkeypatch, mode, problem):
    monkeypatch.setenv(named.MIRRORS_ENV, mirror.url(mode))
    with pytest.raises(DownloadError) as info:
        named.fetch("fashion-mnist", timeout=0.5)
    message = str(info.value)
    assert problem in message and "\n" not in message
    assert "apt-get install dataset-fashion-mnist" in message and "fashion-mnist" in message
    cache = tmp_path / "xdg" / "dualnet" / "fashion-mnist"
    assert list(cache.iterdir()) == []


def test_a_cifar_archive_with_a_wrong_checksum_is_refused(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv(named.MIRRORS_ENV, mirror.url("wrong"))
    with pytest.raises(DownloadError, match="cifar-10-binary.tar.gz: .*wrong checksum: MD5"):
        dn.data.load("cifar10", "train")
    assert list((tmp_path / "xdg" / "dualnet" / "cifar10").iterdir()) == []


def test_a_bad_mirror_is_passed_over_for_a_good_one(mirror, monkeypatch):
    monkeypatch.setenv(named.MIRRORS_ENV, f"{mirror.url('html')},{mirror.url('truncated')},{mirror.url('good')}")
    folder = named.fetch("fashion-mnist", timeout=2)
    assert len(list(folder.iterdir())) == 4


def test_offline_is_one_line_through_the_cli(mirror, monkeypatch, capsys):
    from dualnet_cli.main import main

    monkeypatch.setenv(named.MIRRORS_ENV, "http://127.0.0.1:9/")  # the discard port: nothing listens
    with pytest.raises(SystemExit) as info:
        main(["data", "fetch", "cifar10"])
    err = capsys.readouterr().err.splitlines()[-1] + "\n"
    assert info.value.code == 1
    assert "cannot connect" in err and "cifar-10-binary.tar.gz" in err


def run_cli(argv, capsys):
    from dualnet_cli.main import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


@pytest.mark.parametrize("name, model", [("fashion-mnist", "fashion-cnn"), ("cifar10", "resnet20")])
def test_train_on_a_named_dataset_end_to_end_picks_its_recipe_and_stores_class_names(
        mirror, tmp_path, monkeypatch, capsys, name, model):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["train", "--data", name, "--epochs", "1", "--batch-size", "4", "--device", "cpu",
                              "--validation", "4", "--out", "m.h5"], capsys)
    assert code in (0, None), err
    assert f"model {model} (recipe " in err and "test accuracy" in out
    if name == "cifar10":
        assert "momentum SGD, step schedule" in err
    loaded = dn.load(tmp_path / "m.h5")
    assert loaded.metadata["class_names"] == list(named.NAMED[name].class_names)
    code, out, err = run_cli(["evaluate", "m.h5", "--data", name, "--device", "cpu"], capsys)
    assert code in (0, None) and "test accuracy" in out, err


def test_data_list_and_info_describe_the_named_datasets(mirror, capsys):
    code, out, err = run_cli(["data", "list"], capsys)
    assert "fashion-mnist" in out and "not here: `dualnet data fetch fashion-mnist`" in out and "MIT" in out
    code, out, err = run_cli(["data", "fetch", "fashion-mnist"], capsys)
    # the closing lines name each file downloaded (issue 20.8); a second fetch downloads, and names, none
    wrote = [line for line in out.splitlines() if line.startswith("wrote: ")]
    files = sorted(f.name for f in named.NAMED["fashion-mnist"].files)
    assert sorted(line.rsplit("/", 1)[-1] for line in wrote) == files
    assert out.splitlines()[-len(wrote):] == wrote
    code, out, err = run_cli(["data", "fetch", "fashion-mnist"], capsys)
    assert "wrote: " not in out
    code, out, err = run_cli(["data", "list"], capsys)
    assert "fashion-mnist" in out and "found in" in out
    code, out, err = run_cli(["data", "info", "fashion-mnist", "--json"], capsys)
    info = json.loads(out)
    assert info["image_shape"] == [1, 28, 28] and info["classes"][0] == "T-shirt/top"
    assert sum(info["counts"]["train"]) == 36 and info["splits"]["test"] == 12
