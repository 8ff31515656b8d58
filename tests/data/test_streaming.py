"""dualnet.data.streaming: HDF5 splits read batch by batch equal the in-memory ones; checks from metadata."""

import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dualnet import data
from dualnet.data import limits
from dualnet.errors import DataError


def write(path, images, labels, chunks=None):
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, chunks=chunks)
        f["labels"] = labels
    return path


@pytest.fixture(scope="module")
def grey_h5(tmp_path_factory):
    rng = np.random.default_rng(0)
    return write(tmp_path_factory.mktemp("s") / "g.h5", rng.integers(0, 256, (50, 5, 6), dtype=np.uint8),
                 rng.integers(0, 3, 50), chunks=(7, 5, 6))


@given(st.lists(st.integers(0, 39), min_size=0, max_size=30))
def test_streamed_rows_equal_the_in_memory_rows_in_the_order_asked(grey_h5, rows):
    streamed = data.load(grey_h5, "train", validation=10, stream=True)
    loaded = data.load(grey_h5, "train", validation=10)
    got = streamed.images[np.array(rows, dtype=np.int64)]
    assert got.dtype == np.float32 and got.shape == (len(rows), 1, 5, 6)
    np.testing.assert_array_equal(got, loaded.images[rows])


def test_streamed_splits_slices_and_views_match(colour_h5):
    for split, kwargs in (("train", dict(validation=16, limit=50)), ("val", dict(validation=16)), ("test", {})):
        streamed, loaded = data.load(colour_h5, split, stream=True, **kwargs), data.load(colour_h5, split, **kwargs)
        assert isinstance(streamed, data.StreamDataset) and len(streamed) == len(loaded)
        assert streamed.shape == loaded.shape == (3, 32, 32) and streamed.num_classes == loaded.num_classes
        np.testing.assert_array_equal(streamed.labels, loaded.labels)
        np.testing.assert_array_equal(streamed.images[3:11], loaded.images[3:11])
        head, tail = streamed.split(5)
        np.testing.assert_array_equal(tail.images[0:5], loaded.images[-5:])
        np.testing.assert_array_equal(streamed.subset(4).images[:], loaded.images[:4])
        assert len(head) == len(loaded) - 5
        streamed.close()


def test_stream_checks_shape_dtype_and_labels_before_reading(tmp_path):
    bad = write(tmp_path / "i.h5", np.zeros((4, 3, 3), np.int32), np.zeros(4, np.int64))
    with pytest.raises(DataError, match="images have dtype int32"):
        data.load(bad, "train", validation=1, stream=True)
    labels = write(tmp_path / "l.h5", np.zeros((4, 3, 3), np.uint8), np.array([0, 1, 2, 3]))
    with pytest.raises(DataError, match=r"label 2 at record 2 is outside \[0, 2\)"):
        data.load(labels, "all-train", num_classes=2, stream=True)
    with pytest.raises(DataError, match="streaming reads HDF5 files only"):
        data.load("mnist", "train", stream=True)


def test_the_whole_split_cap_applies_to_loading_not_to_streaming(grey_h5, monkeypatch):
    monkeypatch.setattr(limits, "MAX_PAYLOAD_BYTES", 500)
    with pytest.raises(DataError, match="more than the 500 accepted"):
        data.load(grey_h5, "all-train")
    streamed = data.load(grey_h5, "all-train", stream=True)
    assert streamed.images[[0, 49]].shape == (2, 1, 5, 6)


def test_float_pixels_outside_zero_one_are_refused_when_read(tmp_path):
    path = write(tmp_path / "f.h5", np.full((6, 2, 2), 2.0), np.zeros(6, np.int64))
    streamed = data.load(path, "all-train", stream=True)
    with pytest.raises(DataError, match=r"float pixels must lie in \[0, 1\]"):
        streamed.images[[1, 2]]


def test_prefetched_keeps_the_order_and_raises_where_the_failure_belongs():
    assert list(data.prefetched(lambda k: k * k, range(7))) == [k * k for k in range(7)]

    def read(k):
        if k == 3:
            raise ValueError("bad row")
        return k

    got = []
    with pytest.raises(ValueError, match="bad row"):
        for item in data.prefetched(read, range(6)):
            got.append(item)
    assert got == [0, 1, 2]


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_chunk_aware_reads_equal_the_in_memory_rows(tmp_path, compression):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (70, 2, 3, 3), dtype=np.uint8)
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, chunks=(8, 2, 3, 3), compression=compression)
        f["labels"] = rng.integers(0, 4, 70)
    streamed = data.load(path, "all-train", stream=True)
    for rows in ([5, 3, 4, 60, 61, 62, 9, 9, 0], list(rng.permutation(70)[:33]), []):
        np.testing.assert_array_equal(streamed.images[rows], images[rows] / np.float32(255))
