"""dn.predict: the one inference pipeline (files or prepared arrays -> top classes, names, hints)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import dualnet as dn
from dualnet import inference
from dualnet.errors import DataError


def _digit_page(path, dark_on_light=True):
    page = np.zeros((120, 160))
    page[30:70, 100:106] = 1.0  # a stroke, off-centre
    page = 1 - page if dark_on_light else page
    Image.fromarray((page * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def model():
    m = dn.models.get("lenet5")
    m.metadata = {"class_names": [f"c{i}" for i in range(10)]}
    return m


def test_files_and_their_prepared_arrays_give_the_same_answer(model, tmp_path):
    paths = [_digit_page(tmp_path / "a.png"), _digit_page(tmp_path / "b.png", dark_on_light=False)]
    from_files = dn.predict(model, paths, top=4)
    x = inference.prepare_inputs(model, paths)
    from_array = dn.predict(model, x, top=4)
    assert [p.source for p in from_files] == [str(p) for p in paths] and from_array[0].source is None
    for f, a in zip(from_files, from_array):
        np.testing.assert_array_equal(f.probabilities, a.probabilities)
        assert f.top == a.top and len(f.top) == 4 and f.name == f"c{f.label}"
        assert [p for _, _, p in f.top] == sorted((p for _, _, p in f.top), reverse=True)
    # the two pages are the same stroke, inverted: the same prepared input
    np.testing.assert_allclose(x[0], x[1], atol=1e-6)


def test_probabilities_are_the_softmax_of_the_eval_forward_and_the_mode_is_restored(model, tmp_path):
    x = inference.prepare_inputs(model, _digit_page(tmp_path / "a.png"))
    model.train()
    (answer,) = dn.predict(model, x)
    assert model.training
    model.eval()
    logits = dn.to_numpy(model(x)).astype(np.float64)[0]
    want = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(answer.probabilities, want, rtol=1e-12)
    assert answer.probability == pytest.approx(want.max())


def test_the_model_normalization_is_applied(model, tmp_path):
    x = inference.prepare_inputs(model, _digit_page(tmp_path / "a.png"))
    plain = dn.predict(model, x)[0].probabilities
    model.normalization = {"mean": [0.5], "std": [0.25]}
    try:
        normalized = dn.predict(model, x)[0].probabilities
        model.eval()
        logits = dn.to_numpy(model((x - 0.5) / 0.25)).astype(np.float64)[0]
    finally:
        model.normalization = None
    np.testing.assert_allclose(normalized, np.exp(logits) / np.exp(logits).sum(), rtol=1e-6)
    assert not np.allclose(plain, normalized)


def test_a_blank_digit_image_names_no_class(model, tmp_path):
    Image.fromarray(np.full((50, 50), 200, np.uint8)).save(tmp_path / "blank.png")
    (answer,) = dn.predict(model, tmp_path / "blank.png")
    assert answer.top == [] and answer.label is None and answer.hint == inference.NO_INK


@pytest.mark.parametrize("images,match", [
    (np.zeros((2, 1, 20, 20), np.float32), r"shape \(2, 1, 20, 20\)"),
    (np.full((1, 1, 28, 28), 2.0, np.float32), r"\[0, 1\]"),
    (np.zeros((1, 1, 28, 28), np.int64), r"\[0, 1\]"),
])
def test_arrays_not_prepared_for_the_model_are_refused(model, images, match):
    with pytest.raises(DataError, match=match):
        dn.predict(model, images)


def test_top_and_invert_are_checked(model, tmp_path):
    path = _digit_page(tmp_path / "a.png")
    with pytest.raises(DataError, match="top must be a positive integer"):
        dn.predict(model, path, top=0)
    with pytest.raises(DataError, match="invert must be one of"):
        dn.predict(model, path, invert="maybe")
