"""dualnet.data.dataset: building a Dataset, its views and its checks."""

import numpy as np
import pytest

from dualnet import data
from dualnet.errors import DataError


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
