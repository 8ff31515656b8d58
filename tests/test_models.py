"""The model zoo: LeNet-5 exactly as DESIGN.md, summaries, shapes of every named model."""

from __future__ import annotations

import numpy as np
import pytest

import dualnet as dn


def test_lenet5_has_61706_parameters_and_prints_summary(capsys):
    model = dn.models.lenet5()
    text = model.summary()
    assert "61,706 trainable parameters" in text
    assert "61,706" in capsys.readouterr().out
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 400), (120,), (84, 120), (84,),
                      (10, 84), (10,)]
    assert "16x5x5" in text and "6x14x14" in text


def test_mlp_is_784_300_50_10():
    model = dn.models.mlp()
    assert [tuple(p.shape) for p in model.parameters()][::2] == [(300, 784), (50, 300), (10, 50)]


@pytest.mark.parametrize("name", dn.models.names())
def test_every_model_maps_a_batch_to_ten_logits(name):
    model = dn.models.get(name)
    assert model.spec["name"] == name
    y = model(np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32))
    assert y.shape == (3, 10) and y.dtype == np.float32 and np.isfinite(y).all()
    assert model.output_shape((1, 28, 28)) == (10,)


def test_same_seed_same_weights_different_seed_different_weights():
    a, b, c = dn.models.lenet5(seed=1), dn.models.lenet5(seed=1), dn.models.lenet5(seed=2)
    assert all(np.array_equal(p.data, q.data) for p, q in zip(a.parameters(), b.parameters()))
    assert not np.array_equal(a[0].weight.data, c[0].weight.data)


def test_unknown_model_lists_available():
    with pytest.raises(ValueError, match="lenet5"):
        dn.models.get("resnet")
