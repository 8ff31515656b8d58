"""dn.finetune: freezing by layer-name glob and starting from another model's checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

import dualnet as dn
from dualnet import layers as L
from dualnet.testing import uniform


def test_freeze_matches_nested_layer_names_and_refuses_a_pattern_that_matches_nothing():
    model = dn.models.get("resnet8", num_classes=4)
    frozen = dn.finetune.freeze(model, ["conv1", "res1.*"])
    assert "conv1.weight" in frozen and any(n.startswith("res1.") for n in frozen)
    assert {n for n, p in model.named_parameters() if not p.requires_grad} == set(frozen)
    with pytest.raises(ValueError, match="'nope' matches no layer with parameters"):
        dn.finetune.freeze(model, ["nope"])


def test_init_from_copies_what_matches_and_skips_a_head_of_another_shape(tmp_path):
    source = dn.models.lenet5(seed=1)
    dn.save(source, tmp_path / "a.h5")
    target = dn.models.lenet5(seed=2, num_classes=3)
    copied, skipped = dn.finetune.init_from(target, tmp_path / "a.h5")
    assert "conv1.weight" in copied and "fc2.bias" in copied
    assert any(s.startswith("fc3.weight (shape (10, 84) here (3, 84))") for s in skipped)
    np.testing.assert_array_equal(target["conv1"].weight.data, source["conv1"].weight.data)


def test_a_frozen_batch_norm_keeps_its_statistics_in_training_mode(tmp_path):
    bn = L.BatchNorm2d(3)
    bn(uniform((4, 3, 5, 5), 0, np.float32, 1, 3))  # statistics away from 0 and 1
    mean, var = bn.running_mean.copy(), bn.running_var.copy()
    bn.freeze()
    x = uniform((4, 3, 5, 5), 1, np.float32, -5, 5)
    y = bn(x)  # training mode, yet the running statistics normalize and stay as they are
    np.testing.assert_array_equal(bn.running_mean, mean)
    np.testing.assert_array_equal(bn.running_var, var)
    bn.eval()
    np.testing.assert_array_equal(y, bn(x))
