"""dualnet.data.sources: the bundled MNIST, IDX folders as datasets, bad sources and arguments."""

import gzip
import hashlib
import re
import sys

import numpy as np
import pytest
from idx_files import idx_bytes, idx_folder, write

from dualnet import data
from dualnet.data import sources
from dualnet.errors import DataError


def readme_tables():
    """(sha256 by uncompressed file name, train label counts, test label counts) from the README."""
    text = (data.bundled_mnist_dir() / "README.md").read_text()
    hashes = dict(re.findall(r"\| (\S+)\.gz \|[^|]*\| ([0-9a-f]{64}) \|", text))
    counts = {part: [int(c) for c in re.search(rf"{part} label counts 0\.\.9: ([\d ]+)\.",
                                                text).group(1).split()]
              for part in ("Train", "Test")}
    return hashes, counts["Train"], counts["Test"]


@pytest.fixture(scope="module")
def mnist_all_train():
    return data.load("mnist", "all-train")


@pytest.fixture(scope="module")
def mnist_test():
    return data.load_mnist("test")


# Bundled MNIST ------------------------------------------------------------------------------


def test_bundled_files_match_readme_checksums():
    hashes, _, _ = readme_tables()
    assert len(hashes) == 4
    for name, digest in hashes.items():
        with gzip.open(data.bundled_mnist_dir() / f"{name}.gz", "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, name


def test_bundled_mnist_shapes_and_label_counts(mnist_all_train, mnist_test):
    _, train_counts, test_counts = readme_tables()
    for ds, n, counts in ((mnist_all_train, 60000, train_counts),
                          (mnist_test, 10000, test_counts)):
        assert len(ds) == n and ds.shape == (1, 28, 28) and ds.num_classes == 10
        assert ds.images.shape == (n, 1, 28, 28) and ds.images.dtype == np.float32
        assert ds.labels.shape == (n,) and ds.labels.dtype == np.int64
        assert np.bincount(ds.labels, minlength=10).tolist() == counts


def test_bundled_mnist_pixel_range(mnist_all_train, mnist_test):
    for ds in (mnist_all_train, mnist_test):
        assert ds.images.min() == 0.0 and ds.images.max() == 1.0
        # uint8 sources are divided by 255 exactly, so scaling back gives integers.
        scaled = ds.images[:1000] * np.float32(255)
        np.testing.assert_array_equal(scaled, np.round(scaled))


def test_mnist_train_val_split(mnist_all_train):
    train = data.load_mnist("train")
    val = data.load("mnist", "val")
    assert (len(train), len(val)) == (50000, 10000)
    assert train.name == "mnist:train" and val.num_classes == 10
    np.testing.assert_array_equal(train.labels, mnist_all_train.labels[:50000])
    np.testing.assert_array_equal(val.images, mnist_all_train.images[50000:])


def test_mnist_limit_and_validation_argument(mnist_all_train):
    val = data.load("mnist", "val", validation=500, limit=100)
    np.testing.assert_array_equal(val.labels, mnist_all_train.labels[59500:59600])
    assert len(data.load("mnist", "test", limit=7)) == 7
    assert len(data.load("mnist", "train", validation=0, limit=10**9)) == 60000


def test_bundled_dir_holds_the_files():
    folder = data.bundled_mnist_dir()
    assert {p.name for p in folder.glob("*.gz")} == {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}


@pytest.fixture(scope="module")
def real_mnist_dir():
    # Module scope: resolved before any function-scoped fixture shadows dualnet_data.
    return data.bundled_mnist_dir()


def fake_mnist_folder(folder, real_mnist_dir):
    folder.mkdir(parents=True)
    for source in real_mnist_dir.glob("*.gz"):
        (folder / source.name).symlink_to(source)
    return folder


@pytest.fixture
def fresh_data_package(tmp_path, monkeypatch):
    """A dualnet_data package under tmp_path that shadows any installed one during the test."""
    package = tmp_path / "site" / "dualnet_data"
    (package / "mnist").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    saved = sys.modules.pop("dualnet_data", None)
    monkeypatch.syspath_prepend(str(package.parent))
    yield package
    sys.modules.pop("dualnet_data", None)
    if saved is not None:
        sys.modules["dualnet_data"] = saved


def test_bundled_dir_prefers_installed_package(real_mnist_dir, fresh_data_package):
    fresh_data_package.joinpath("mnist").rmdir()
    folder = fake_mnist_folder(fresh_data_package / "mnist", real_mnist_dir)
    assert data.bundled_mnist_dir() == folder


def test_bundled_dir_falls_back_then_explains(real_mnist_dir, fresh_data_package, tmp_path,
                                              monkeypatch):
    # The package holds no files here, as in a checkout where dualnet_data is not installed.
    checkout = tmp_path / "checkout"
    folder = fake_mnist_folder(checkout / "data" / "mnist", real_mnist_dir)
    monkeypatch.setattr(sources, "__file__", str(checkout / "dualnet" / "data" / "sources.py"))
    assert data.bundled_mnist_dir() == folder
    monkeypatch.setattr(sources, "__file__", str(tmp_path / "elsewhere" / "dualnet" / "data" / "sources.py"))
    with pytest.raises(DataError, match="bundled MNIST files are missing.*pip install"):
        data.load_mnist("test")


@pytest.mark.parametrize("dotted, compress", [(False, True), (True, False)])
def test_idx_directory_splits(tmp_path, dotted, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 4, 5), dtype=np.uint8)
    labels = rng.integers(0, 3, 30).astype(np.uint8)
    test = (rng.integers(0, 256, (6, 4, 5), dtype=np.uint8), np.array([0, 1, 2, 3, 4, 0], "u1"))
    folder = idx_folder(tmp_path / "d", images, labels, test, dotted, compress)
    train = data.load(folder, "train", validation=10)
    val = data.load(str(folder), "val", validation=10, limit=4)
    full = data.load(folder, "all-train")
    tst = data.load(folder, "test")
    assert (len(train), len(val), len(full), len(tst)) == (20, 4, 30, 6)
    # num_classes comes from every label file, so the splits agree.
    assert train.num_classes == tst.num_classes == 5
    np.testing.assert_array_equal(train.images[:, 0], images[:20] / np.float32(255))
    np.testing.assert_array_equal(val.labels, labels[20:24])
    np.testing.assert_array_equal(tst.labels, test[1])


def test_idx_four_dimensional_images(tmp_path):
    images = np.arange(2 * 3 * 2 * 2, dtype=np.uint8).reshape(2, 3, 2, 2)
    folder = idx_folder(tmp_path / "d", images, np.array([1, 0], "u1"))
    ds = data.load(folder, "all-train")
    assert ds.shape == (3, 2, 2) and ds.num_classes == 2


def test_idx_directory_problems(tmp_path):
    images = np.zeros((5, 3, 3), np.uint8)
    mismatch = idx_folder(tmp_path / "a", images, np.zeros(4, "u1"))
    with pytest.raises(DataError, match="5 images but .* 4 labels"):
        data.load(mismatch, "all-train")
    missing = idx_folder(tmp_path / "b", images, np.zeros(5, "u1"))
    (missing / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="no train labels file"):
        data.load(missing)
    with pytest.raises(DataError, match="no test images file"):
        data.load(idx_folder(tmp_path / "c", images, np.zeros(5, "u1")), "test")
    with pytest.raises(DataError, match="label 7 at record 2 is outside"):
        data.load(idx_folder(tmp_path / "d", images, np.array([0, 1, 7, 0, 0], "u1")),
                  "all-train", num_classes=3)
    flat = tmp_path / "e"
    flat.mkdir()
    write(flat / "train-images-idx3-ubyte", idx_bytes(np.zeros((5, 9), "u1"), dims=(5, 9)))
    write(flat / "train-labels-idx1-ubyte", idx_bytes(np.zeros(5, "u1")))
    with pytest.raises(DataError, match="expected \\(N, H, W\\)"):
        data.load(flat)
    with pytest.raises(DataError, match="validation=10 exceeds"):
        data.load(tmp_path / "c", "train", validation=10)


def test_bad_sources_and_arguments(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        data.load(tmp_path / "absent")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(DataError, match="not an HDF5 file"):
        data.load(tmp_path / "x.txt")
    for kwargs, match in [(dict(split="dev"), "unknown split"), (dict(limit=-1), "limit"),
                          (dict(validation=1.5), "validation"), (dict(num_classes=0), ">= 1")]:
        with pytest.raises(DataError, match=match):
            data.load("mnist", **kwargs)
