"""dualnet.data.normalize: per-channel statistics, normalizing, and the models that carry one."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dualnet as dn
from dualnet import data
from dualnet.data.dataset import Dataset
from dualnet.errors import DataError


@given(st.integers(1, 40), st.integers(1, 4), st.integers(0, 2**31))
def test_channel_stats_match_numpy_per_channel(n, c, seed):
    images = np.random.default_rng(seed).random((n, c, 3, 5), dtype=np.float32)
    stats = data.channel_stats(Dataset(images, np.zeros(n, np.int64)))
    mean, std = images.astype(np.float64).mean(axis=(0, 2, 3)), images.astype(np.float64).std(axis=(0, 2, 3))
    np.testing.assert_allclose(stats["mean"], mean, rtol=1e-9)
    np.testing.assert_allclose(stats["std"], np.where(std < 1e-6, 1.0, std), rtol=1e-6, atol=1e-9)


def test_channel_stats_of_a_constant_channel_leave_it_unscaled():
    images = np.zeros((4, 2, 3, 3), np.float32)
    images[:, 1] = 0.5
    assert data.channel_stats(images) == {"mean": [0.0, 0.5], "std": [1.0, 1.0]}


def test_normalize_subtracts_mean_and_divides_by_std_per_channel():
    images = np.random.default_rng(0).random((3, 2, 4, 4), dtype=np.float32)
    norm = {"mean": [0.25, 0.5], "std": [0.5, 2.0]}
    out = data.normalize(images, norm)
    assert out.dtype == np.float32 and out is not images
    expected = (images - np.float32([0.25, 0.5])[:, None, None]) / np.float32([0.5, 2.0])[:, None, None]
    np.testing.assert_array_equal(out, expected)
    assert data.normalize(images, None) is images
    np.testing.assert_array_equal(data.normalize(images, {"mean": [0.5], "std": [0.5]}), (images - 0.5) / 0.5)


@pytest.mark.parametrize("norm, match", [
    ({"mean": [0.1]}, r"normalization must be \{'mean'"),
    ({"mean": [0.1, 0.2, 0.3], "std": [1.0]}, r"mean must be 1 or 2 finite numbers"),
    ({"mean": [0.1], "std": [0.0]}, r"std must be > 0, got \[0\.0\]"),
    ({"mean": [float("nan")], "std": [1.0]}, r"mean must be 1 or 2 finite numbers"),
])
def test_bad_normalizations_are_refused_naming_the_value(norm, match):
    with pytest.raises(DataError, match=match):
        data.normalize(np.zeros((1, 2, 2, 2), np.float32), norm)


def test_evaluate_applies_the_models_normalization():
    rng = np.random.default_rng(3)
    ds = Dataset(rng.random((20, 1, 8, 8), dtype=np.float32), rng.integers(0, 10, 20))
    model = dn.models.get("digits-cnn", seed=0)
    norm = data.channel_stats(ds)
    plain = dn.evaluate(model, Dataset._from_checked(data.normalize(ds.images, norm), ds.labels, "n", 10))
    model.normalization = norm
    assert data.model_normalization(model) is norm
    normalized = dn.evaluate(model, ds)
    np.testing.assert_array_equal(plain["probabilities"], normalized["probabilities"])
    del model.normalization
    model.metadata = {"normalization": norm}  # as dn.load leaves a checkpoint's
    np.testing.assert_array_equal(dn.evaluate(model, ds)["probabilities"], plain["probabilities"])
