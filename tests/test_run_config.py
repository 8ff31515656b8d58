"""dualnet.run_config: RunConfig's checks, its defaults and its resolution by the data's recipe."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dualnet import run
from dualnet.run_config import RECIPE_FIELDS, RunConfig

# --- RunConfig ---------------------------------------------------------------------------------


def test_defaults_are_the_documented_ones():
    by_data = {name: None for name in RECIPE_FIELDS}
    # optimizer and schedule follow the data too (nesterov and cosine unless the data's recipe says otherwise)
    folders = dict(image_size=None, channels=None, test_fraction=None, strict=False)  # image folders' preparation
    assert RunConfig().to_dict() == dict(data="mnist", optimizer=None, momentum=0.9, schedule=None,
                                         seed=0, limit=None, clip_grad=None, validation=None, num_classes=None,
                                         stream=False, **by_data, **folders)
    assert RunConfig().resolved((1, 28, 28)).to_dict() == dict(
        model="lenet5", data="mnist", epochs=10, batch_size=64, lr=0.02, optimizer="nesterov", momentum=0.9,
        weight_decay=0.0, schedule="cosine", augment_shift=1, seed=0, limit=None, clip_grad=None, validation=None,
        num_classes=None, augment_crop=0, augment_flip=False, normalize=False, stream=False, **folders)


def test_resolution_keeps_given_values_and_fills_the_rest():
    config = RunConfig(model="mlp", lr=0.5).resolved((1, 8, 8))
    assert (config.model, config.lr, config.epochs, config.batch_size, config.augment_shift) == ("mlp", 0.5, 20, 32, 0)
    assert config.is_resolved and not RunConfig().is_resolved
    with pytest.raises(ValueError, match="needs a resolved configuration"):
        RunConfig().make_optimizer([])


def test_ints_become_floats_and_paths_strings(tmp_path):
    config = RunConfig(lr=1, momentum=0, weight_decay=0, clip_grad=5, data=tmp_path, epochs=np.int64(3))
    assert (config.lr, config.momentum, config.weight_decay, config.clip_grad) == (1.0, 0.0, 0.0, 5.0)
    assert all(type(v) is float for v in (config.lr, config.momentum, config.weight_decay, config.clip_grad))
    assert config.data == str(tmp_path) and type(config.epochs) is int


@pytest.mark.parametrize("field, value, match", [
    ("model", "resnet", r"RunConfig\.model: 'resnet' is not one of 'lenet5'"),
    ("data", 5, r"RunConfig\.data must be 'mnist', 'digits' or a path, got 5"),
    ("epochs", 0, r"RunConfig\.epochs must be an integer > 0, got 0"),
    ("epochs", 1.5, r"RunConfig\.epochs must be an integer > 0, got 1\.5"),
    ("epochs", True, r"RunConfig\.epochs must be an integer > 0, got True"),
    ("batch_size", -8, r"RunConfig\.batch_size must be an integer > 0, got -8"),
    ("lr", 0.0, r"RunConfig\.lr must be a finite number > 0, got 0\.0"),
    ("lr", math.nan, r"RunConfig\.lr must be a finite number > 0, got nan"),
    ("lr", "0.1", r"RunConfig\.lr must be a finite number > 0, got '0\.1'"),
    ("optimizer", "rmsprop", r"RunConfig\.optimizer: 'rmsprop' is not one of 'sgd', 'momentum', 'nesterov', 'adam'"),
    ("momentum", 1.0, r"RunConfig\.momentum must be a number in \[0, 1\), got 1\.0"),
    ("momentum", -0.1, r"RunConfig\.momentum must be a finite number >= 0, got -0\.1"),
    ("weight_decay", math.inf, r"RunConfig\.weight_decay must be a finite number >= 0, got inf"),
    ("schedule", "linear", r"RunConfig\.schedule: 'linear' is not one of 'none', 'step', 'cosine'"),
    ("augment_shift", 9, r"RunConfig\.augment_shift must be an integer in \[0, 8\], got 9"),
    ("seed", -1, r"RunConfig\.seed must be an integer >= 0, got -1"),
    ("limit", 0, r"RunConfig\.limit must be an integer > 0, got 0"),
    ("clip_grad", -1.0, r"RunConfig\.clip_grad must be a finite number > 0, got -1\.0"),
    ("validation", -1, r"RunConfig\.validation must be an integer >= 0, got -1"),
    ("num_classes", 0, r"RunConfig\.num_classes must be an integer > 0, got 0"),
    ("augment_crop", 9, r"RunConfig\.augment_crop must be an integer in \[0, 8\], got 9"),
    ("augment_flip", 1, r"RunConfig\.augment_flip must be True or False, got 1"),
    ("normalize", "yes", r"RunConfig\.normalize must be True or False, got 'yes'"),
])
def test_each_bad_value_is_refused_naming_field_expected_and_actual(field, value, match):
    with pytest.raises(ValueError, match=match):
        RunConfig(**{field: value})
    with pytest.raises(ValueError, match=match):
        RunConfig().replace(**{field: value})


def test_unknown_field_is_refused():
    with pytest.raises(ValueError, match="RunConfig has no field 'learning_rate'; known: model, data, epochs"):
        run.check_field("learning_rate", 0.1)


def test_conflicts_list_given_values_that_differ_in_field_order():
    stored = RunConfig(lr=0.02, batch_size=32, epochs=2)
    given = dict(seed=0, lr=0.1, epochs=5, batch_size=64)
    assert run.conflicts(given, stored) == [("batch_size", 64, 32), ("lr", 0.1, 0.02)]
    assert run.conflicts({}, stored) == []
