"""dualnet.data.digits_source: the 8x8 digits from scikit-learn or the bundled copy, the same arrays."""

import numpy as np
import pytest

from dualnet import data
from dualnet.data import digits_source
from dualnet.errors import DataError


def test_bundled_digits_equal_sklearn_split():
    pytest.importorskip("sklearn")
    from_sklearn, from_bundle = digits_source.digits_from_sklearn(), digits_source.digits_from_bundle()
    for a, b in zip(from_sklearn, from_bundle):
        assert a.shape == b.shape and np.array_equal(a, b)


def test_digits_source_falls_back_to_the_bundle(monkeypatch):
    def no_sklearn():
        raise ImportError("no sklearn here")

    monkeypatch.setattr(digits_source, "digits_from_sklearn", no_sklearn)
    test = data.load("digits", "test")
    expected = digits_source.digits_from_bundle()[2]
    assert np.array_equal(test.images[:, 0], expected / np.float32(255))


def test_digits_splits_sizes_and_classes():
    train, val = data.load("digits", "train"), data.load("digits", "val")
    test, every = data.load("digits", "test"), data.load("digits", "all-train")
    assert (len(train), len(val), len(test), len(every)) == (1437 - 239, 239, 360, 1437)
    assert train.shape == (1, 8, 8) and train.num_classes == test.num_classes == 10
    assert np.array_equal(np.concatenate([train.labels, val.labels]), every.labels)
    assert every.images.min() == 0.0 and every.images.max() == 1.0
    assert len(data.load("digits", "train", validation=100, limit=50)) == 50


def test_digits_num_classes_refuses_labels_outside():
    with pytest.raises(DataError, match="outside"):
        data.load("digits", "test", num_classes=5)
