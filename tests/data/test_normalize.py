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


@pytest.mark.parametrize("norm, match", [
    ({"mean": [0.1], "std": [1e-42]}, r"std must be 1 or 2 finite numbers|std must be >= 1e-06"),
    ({"mean": [0.1], "std": [1e-300]}, r"std must be >= 1e-06 .*got \[1e-300\]"),
    ({"mean": [0.1], "std": [1e-7]}, r"std must be >= 1e-06"),
    ({"mean": [1e300], "std": [0.3]}, r"mean must be 1 or 2 finite numbers .*finite in float32\), got \[1e\+300\]"),
    ({"mean": [0.1], "std": [1e39]}, r"std must be 1 or 2 finite numbers .*finite in float32"),
    ({"mean": [127.5, 127.5], "std": [64.0, 64.0]}, r"mean must lie in \[-1, 2\] .*not 0..255\), got \[127.5"),
    ({"mean": [-1.5], "std": [1.0]}, r"mean must lie in \[-1, 2\]"),
    ({"mean": [], "std": []}, r"mean must be 1 or 2 finite numbers"),
])
def test_normalizations_that_break_in_float32_or_lie_outside_the_input_scale_are_refused(norm, match):
    with pytest.raises(DataError, match=match):
        data.check_normalization(norm, 2, "here")


def test_normalizations_at_the_documented_bounds_are_accepted_and_stay_finite():
    from dualnet.data.normalize import MEAN_RANGE, STD_FLOOR

    images = np.random.default_rng(1).random((2, 2, 3, 3), dtype=np.float32)
    for mean in MEAN_RANGE:
        norm = {"mean": [mean, 0.5], "std": [STD_FLOOR, 1.0]}
        assert data.check_normalization(norm, 2, "here") == norm
        assert np.isfinite(data.normalize(images, norm)).all()


def test_a_stored_normalization_is_checked_and_a_normalizing_run_without_one_is_refused():
    from dualnet.data.normalize import stored_normalization

    norm = {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2]}
    assert stored_normalization({"normalization": norm, "train_config": {"normalize": True}}, 3, "f.h5") == norm
    assert stored_normalization({"train_config": {"normalize": False}}, 3, "f.h5") is None
    assert stored_normalization({}, None, "f.h5") is None
    with pytest.raises(DataError, match=r"^f.h5: the run normalizes its inputs .* holds no 'normalization'"):
        stored_normalization({"train_config": {"normalize": True}}, 3, "f.h5")
    with pytest.raises(DataError, match=r"^f.h5: normalization mean must be 1 or 3 finite"):
        stored_normalization({"normalization": {"mean": [0.1, 0.2], "std": [1.0]}}, 3, "f.h5")


def test_a_checkpoint_with_a_bad_normalization_is_neither_written_nor_read(tmp_path):
    import json

    import h5py

    model = dn.models.get("digits-cnn", seed=0)
    bad = {"mean": [0.5], "std": [1e-40]}
    with pytest.raises(dn.CheckpointError, match=r"would not load back \(metadata: normalization std must be >="):
        dn.save(model, tmp_path / "refused.h5", normalization=bad)
    assert not (tmp_path / "refused.h5").exists()
    path = dn.save(model, tmp_path / "m.h5", normalization={"mean": [0.5], "std": [0.25]})
    with h5py.File(path, "r+") as f:  # as a damaged or hand-edited file would hold it
        f.attrs["metadata"] = json.dumps({"normalization": bad})
    with pytest.raises(dn.CheckpointError, match=rf"^{path}: metadata: normalization std must be >= 1e-06"):
        dn.load(path)
