"""dualnet.data.hdf5: HDF5 files as datasets (flat and grouped layouts) and the problems they can hold."""

import h5py
import numpy as np
import pytest

from dualnet import data
from dualnet.errors import DataError


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
