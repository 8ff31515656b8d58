"""Tests for dualnet.data and dualnet.idx: bundled MNIST, IDX and HDF5 readers, batching, shifts."""

import gzip
import hashlib
import re
import struct
import sys
import time
import tracemalloc

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dualnet import data
from dualnet.errors import DataError
from dualnet.idx import read_idx, read_idx_header

TYPE_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(array, dims=None, code=None):
    """IDX encoding of array; dims/code override the header to forge malformed files."""
    array = np.asarray(array)
    code = TYPE_CODES[array.dtype.str[1:]] if code is None else code
    dims = array.shape if dims is None else dims
    header = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, payload, compress=False):
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


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
    monkeypatch.setattr(data, "__file__", str(checkout / "dualnet" / "data.py"))
    assert data.bundled_mnist_dir() == folder
    monkeypatch.setattr(data, "__file__", str(tmp_path / "elsewhere" / "dualnet" / "data.py"))
    with pytest.raises(DataError, match="bundled MNIST files are missing.*pip install"):
        data.load_mnist("test")


# IDX ----------------------------------------------------------------------------------------

idx_dtypes = st.sampled_from([np.dtype(d) for d in ("u1", "i1", ">i2", "<i4", ">f4", "<f8")])


@settings(deadline=None)
@given(array=hnp.arrays(idx_dtypes, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0,
                                                      max_side=5)),
       compress=st.booleans())
def test_idx_round_trip(tmp_path_factory, array, compress):
    path = write(tmp_path_factory.mktemp("idx") / "a.idx", idx_bytes(array), compress)
    got = read_idx(path)
    assert got.shape == array.shape and got.dtype == array.dtype.newbyteorder("=")
    assert got.tobytes() == array.astype(got.dtype).tobytes()
    assert read_idx_header(path) == (got.dtype, array.shape)


def idx_folder(folder, train_images, train_labels, test=None, dotted=False, compress=True):
    folder.mkdir(exist_ok=True)
    sep = "." if dotted else "-"
    parts = [("train", train_images, train_labels)] + ([("t10k", *test)] if test else [])
    for prefix, images, labels in parts:
        rank = f"idx{np.ndim(images)}"
        suffix = ".gz" if compress else ""
        write(folder / f"{prefix}-images{sep}{rank}-ubyte{suffix}", idx_bytes(images), compress)
        write(folder / f"{prefix}-labels{sep}idx1-ubyte{suffix}", idx_bytes(labels), compress)
    return folder


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


# HDF5 ---------------------------------------------------------------------------------------


def make_h5(path, layout, images, labels, test=None, **attrs):
    with h5py.File(path, "w") as f:
        f.attrs.update(attrs)
        where = f if layout == "flat" else f.create_group("train")
        where["images"], where["labels"] = images, labels
        if test is not None:
            g = f.create_group("test")
            g["images"], g["labels"] = test
    return path


@pytest.mark.parametrize("layout", ["flat", "groups"])
@pytest.mark.parametrize("rank", [3, 4])
@pytest.mark.parametrize("dtype", ["uint8", "float64"])
def test_hdf5_round_trip(tmp_path, layout, rank, dtype):
    rng = np.random.default_rng(1)
    shape = (20, 7, 6) if rank == 3 else (20, 2, 7, 6)
    raw = rng.integers(0, 256, shape)
    images = raw.astype(np.uint8) if dtype == "uint8" else raw / 255.0
    labels = rng.integers(0, 4, 20)
    test_images, test_labels = images[:3], np.array([0, 1, 2])
    path = make_h5(tmp_path / "d.h5", layout, images, labels, (test_images, test_labels))
    expected = (raw / 255.0).astype(np.float32).reshape(20, -1, 7, 6)
    train = data.load(path, "train", validation=5)
    val = data.load(path, "val", validation=5)
    full = data.load(path, "all-train", limit=12)
    tst = data.load(path, "test")
    np.testing.assert_allclose(train.images, expected[:15], rtol=0, atol=1e-7)
    np.testing.assert_array_equal(val.labels, labels[15:])
    np.testing.assert_array_equal(full.labels, labels[:12])
    np.testing.assert_array_equal(tst.labels, test_labels)
    assert train.shape == expected.shape[1:] and train.images.dtype == np.float32
    assert train.num_classes == tst.num_classes == max(labels.max(), 2) + 1


def test_hdf5_num_classes_attribute_and_sniffing(tmp_path):
    images = np.zeros((4, 2, 2), np.uint8)
    path = make_h5(tmp_path / "data.bin", "flat", images, np.array([0, 1, 1, 0]), num_classes=10)
    ds = data.load(path, "all-train")
    assert ds.num_classes == 10 and ds.name.endswith(":all-train")


# Malformed input ----------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("case, payload, match", [
    ("wrong magic", b"\x08\x03\x00\x00" + bytes(20), "wrong magic"),
    ("unknown type", idx_bytes(np.zeros(3, "u1"), code=0x0A), "unknown IDX type"),
    ("short header", b"\x00\x00\x08\x03\x00\x00", "truncated header"),
    ("truncated", idx_bytes(np.zeros((2, 3, 3), "u1"))[:-1], "truncated"),
    ("trailing", idx_bytes(np.zeros((2, 3, 3), "u1")) + b"\x00", "trailing"),
    ("empty", b"", "too short"),
])
def test_malformed_idx_raises(tmp_path, case, payload, match, compress):
    path = write(tmp_path / "bad-idx", payload, compress)
    with pytest.raises(DataError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("compress", [False, True])
def test_huge_header_fails_before_allocating(tmp_path, compress):
    # 10**12 uint8 elements claimed by a header followed by a few bytes.
    path = write(tmp_path / "huge", idx_bytes(np.zeros(8, "u1"), dims=(10**4, 10**4, 10**4)),
                 compress)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DataError, match="header is corrupt"):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20 and time.perf_counter() - start < 1.0


def test_corrupt_gzip_stream(tmp_path):
    good = gzip.compress(idx_bytes(np.arange(200, dtype="u1")))
    path = write(tmp_path / "bad.gz", good[:20] + bytes(len(good) - 20))
    with pytest.raises(DataError, match="bad.gz"):
        read_idx(path)


def test_missing_file_is_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "nope")


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


def test_hdf5_problems(tmp_path):
    images, labels = np.zeros((4, 2, 2), np.uint8), np.array([0, 1, 2, 3])
    cases = [
        ("count.h5", dict(labels=labels[:3]), "4 images but .* 3 labels"),
        ("nan.h5", dict(images=np.where(np.arange(16).reshape(4, 2, 2) == 9, np.nan, 0.5)),
         "record 2 holds NaN"),
        ("inf.h5", dict(images=np.full((4, 2, 2), np.inf)), "record 0 holds NaN or infinite"),
        ("range.h5", dict(images=np.full((4, 2, 2), 255.0)), "must lie in \\[0, 1\\]"),
        ("negative.h5", dict(labels=np.array([0, -1, 0, 0])), "label -1 at record 1"),
        ("float_labels.h5", dict(labels=labels.astype(float)), "expected integers"),
        ("rank.h5", dict(images=np.zeros((4, 4))), "expected \\(N, H, W\\)"),
        ("int_images.h5", dict(images=np.zeros((4, 2, 2), np.int32)), "expected uint8"),
    ]
    for name, override, match in cases:
        arrays = dict(images=images, labels=labels) | override
        path = make_h5(tmp_path / name, "flat", arrays["images"], arrays["labels"])
        with pytest.raises(DataError, match=match) as info:
            data.load(path, "all-train")
        assert str(path) in str(info.value), name

    with h5py.File(tmp_path / "missing.h5", "w") as f:
        f["images"] = images
    with pytest.raises(DataError, match="missing dataset '/labels'"):
        data.load(tmp_path / "missing.h5")
    with pytest.raises(DataError, match="no 'test' group"):
        data.load(make_h5(tmp_path / "flat.h5", "flat", images, labels), "test")
    with pytest.raises(DataError, match="no 'train' group"):
        with h5py.File(tmp_path / "onlytest.h5", "w") as f:
            f.create_group("test")
        data.load(tmp_path / "onlytest.h5", "train")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="cannot open as HDF5"):
        data.load(tmp_path / "junk.h5")


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


# Dataset ------------------------------------------------------------------------------------


def test_dataset_construction_and_views():
    images = np.arange(5 * 2 * 3, dtype=np.uint8).reshape(5, 2, 3)
    ds = data.Dataset(images, np.array([0, 2, 1, 1, 0]), name="toy")
    assert ds.shape == (1, 2, 3) and ds.num_classes == 3 and len(ds) == 5
    assert ds.images.dtype == np.float32 and ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.images[:, 0] * np.float32(255), images)
    head, tail = ds.split(2)
    assert (len(head), len(tail)) == (3, 2)
    np.testing.assert_array_equal(tail.labels, [1, 0])
    assert len(ds.subset(2)) == 2 and len(ds.subset(99)) == 5
    assert data.Dataset(np.zeros((2, 3, 4, 4)), [0, 1], num_classes=10).num_classes == 10
    assert "toy" in repr(ds)
    with pytest.raises(DataError, match="cannot split off 6"):
        ds.split(6)
    with pytest.raises(DataError, match="toy: label 4 at record 0"):
        data.Dataset(np.zeros((1, 2, 2)), [4], name="toy", num_classes=4)
    with pytest.raises(DataError, match="toy: record 0 holds NaN"):
        data.Dataset(np.full((1, 2, 2), np.nan, np.float32), [0], name="toy")


# Batches ------------------------------------------------------------------------------------


def index_dataset(n):
    """A dataset whose label is the record index, and whose one pixel repeats it."""
    return data.Dataset(np.arange(n, dtype=np.float64).reshape(n, 1, 1, 1) / max(n, 1),
                        np.arange(n), num_classes=max(n, 1))


@given(n=st.integers(0, 60), batch_size=st.integers(1, 70), seed=st.integers(0, 2**32),
       epoch=st.integers(0, 5), drop_last=st.booleans(), shuffle=st.booleans())
def test_batches_cover_each_index_once(n, batch_size, seed, epoch, drop_last, shuffle):
    ds = index_dataset(n)
    got = list(data.batches(ds, batch_size, shuffle=shuffle, seed=seed, epoch=epoch,
                            drop_last=drop_last))
    seen = np.concatenate([labels for _, labels in got]) if got else np.zeros(0, int)
    for images, labels in got:
        np.testing.assert_array_equal(images[:, 0, 0, 0], ds.images[labels, 0, 0, 0])
        assert len(labels) == batch_size or (not drop_last and labels is got[-1][1])
    if drop_last:
        assert len(seen) == n - n % batch_size and len(set(seen.tolist())) == len(seen)
    else:
        assert sorted(seen.tolist()) == list(range(n))
    if not shuffle:
        assert seen.tolist() == list(range(len(seen)))


def test_batches_reproducible_and_differ_across_epochs():
    ds = index_dataset(100)

    def order(**kw):
        return np.concatenate([y for _, y in data.batches(ds, 16, **kw)]).tolist()

    assert order(seed=3, epoch=1) == order(seed=3, epoch=1)
    assert order(seed=3, epoch=1) != order(seed=3, epoch=2)
    assert order(seed=3, epoch=1) != order(seed=4, epoch=1)
    assert order(seed=3, epoch=1) != list(range(100))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "8", None])
def test_batches_rejects_bad_batch_size(bad):
    with pytest.raises(DataError, match="batch_size"):
        data.batches(index_dataset(4), bad)


# Shifts -------------------------------------------------------------------------------------


def shift_reference(images, shifts):
    """Per-image loop: content moves down by dy and right by dx; vacated pixels are zero."""
    out = np.zeros_like(images)
    h, w = images.shape[-2:]
    for i, (dy, dx) in enumerate(shifts):
        for y in range(h):
            for x in range(w):
                if 0 <= y - dy < h and 0 <= x - dx < w:
                    out[i, ..., y, x] = images[i, ..., y - dy, x - dx]
    return out


image_batches = hnp.arrays(np.float32, st.tuples(st.integers(0, 5), st.integers(1, 2),
                                                 st.integers(1, 6), st.integers(1, 6)),
                           elements=st.floats(0, 1, width=32))


@given(images=image_batches, max_shift=st.integers(0, 7), seed=st.integers(0, 2**32))
def test_random_shift_matches_loop_reference(images, max_shift, seed):
    got = data.random_shift(images, max_shift, np.random.default_rng(seed))
    shifts = np.random.default_rng(seed).integers(-max_shift, max_shift + 1, (len(images), 2))
    if max_shift == 0:
        shifts = np.zeros((len(images), 2), int)
    assert got.dtype == images.dtype and got is not images
    np.testing.assert_array_equal(got, shift_reference(images, shifts))


@given(images=image_batches, data_=st.data())
def test_shift_images_matches_loop_reference(images, data_):
    shifts = data_.draw(hnp.arrays(np.int64, (len(images), 2), elements=st.integers(-8, 8)))
    np.testing.assert_array_equal(data.shift_images(images, shifts),
                                  shift_reference(images, shifts))
    # Three-dimensional (N, H, W) batches take the same path.
    np.testing.assert_array_equal(data.shift_images(images[:, 0], shifts),
                                  shift_reference(images[:, 0], shifts))


def test_zero_shift_is_identity(mnist_test):
    images = mnist_test.images[:50]
    out = data.random_shift(images, 0, np.random.default_rng(0))
    assert out is not images
    np.testing.assert_array_equal(out, images)


def test_shift_keeps_pixel_mass_away_from_borders():
    k = 3
    rng = np.random.default_rng(5)
    images = np.zeros((200, 1, 16, 16), np.float32)
    # Integer-valued pixels keep float32 sums exact whatever the summation order.
    images[:, :, k:-k, k:-k] = rng.integers(0, 256, (200, 1, 16 - 2 * k, 16 - 2 * k))
    out = data.random_shift(images, k, rng)
    np.testing.assert_array_equal(out.sum(axis=(1, 2, 3)), images.sum(axis=(1, 2, 3)))
    assert not np.array_equal(out, images)


def test_shifts_are_independent_and_cover_the_range():
    k, n = 2, 3000
    images = np.zeros((n, 1, 9, 9), np.float32)
    images[:, 0, 4, 4] = 1
    out = data.random_shift(images, k, np.random.default_rng(11))
    positions = np.argwhere(out[:, 0] == 1)
    assert len(positions) == n and np.array_equal(positions[:, 0], np.arange(n))
    dy, dx = positions[:, 1] - 4, positions[:, 2] - 4
    assert dy.min() == dx.min() == -k and dy.max() == dx.max() == k
    pairs = set(zip(dy.tolist(), dx.tolist()))
    assert len(pairs) == (2 * k + 1) ** 2
