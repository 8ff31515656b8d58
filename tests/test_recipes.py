"""dualnet.recipes: the model and settings a run follows by the data's shape, and what they reach."""

from __future__ import annotations

import pytest

import dualnet as dn
from dualnet import run
from dualnet.errors import DataError
from dualnet.recipes import recipe_for
from dualnet.run import RunConfig


@pytest.mark.parametrize("shape, name, model", [
    ((1, 28, 28), "mnist", "lenet5"), ((1, 8, 8), "digits", "digits-cnn"), ((1, 32, 32), "grey", "lenet5"),
    ((3, 32, 32), "colour", "resnet8"), ((3, 16, 16), "colour", "resnet8"), ((1, 1, 1), "digits", "mlp"),
])
def test_recipe_is_chosen_by_the_image_shape(shape, name, model):
    recipe = recipe_for(shape)
    assert (recipe.name, recipe.model) == (name, model)
    dn.models.get(recipe.model, input_shape=shape)  # the chosen model takes the shape


def test_mnist_recipe_keeps_the_measured_lenet5_defaults():
    values = recipe_for((1, 28, 28)).values()
    assert values == dict(model="lenet5", epochs=10, batch_size=64, lr=0.02, weight_decay=0.0, augment_shift=1,
                          augment_crop=0, augment_flip=False, normalize=False)


def test_digits_defaults_reach_97_percent_test_accuracy(tmp_path):
    result = dn.train_run(RunConfig(data="digits"), out=tmp_path / "digits.h5", device="cpu")
    stored = run.read_run(result.last)
    assert (stored.config.model, stored.config.epochs, stored.config.augment_shift) == ("digits-cnn", 20, 0)
    assert result.test_accuracy >= 0.97


def test_the_model_is_built_for_the_data_shape_and_classes(tmp_path):
    prepared = run.new_run(RunConfig(data="digits", model="mlp", limit=64), out=tmp_path / "x.h5")
    assert tuple(prepared.model.input_shape) == (1, 8, 8) and prepared.model.output_shape((1, 8, 8)) == (10,)
    assert prepared.config.num_classes == 10 and prepared.config.is_resolved
    assert prepared.recipe_note == ("model mlp (recipe digits for 1x8x8 images, 10 classes): 20 epochs, "
                                    "batch 32, lr 0.05, no augmentation")
    colour = recipe_for((3, 32, 32))
    assert (colour.augment_crop, colour.augment_flip, colour.normalize) == (4, True, True)
    wider = run.new_run(RunConfig(data="digits", num_classes=12, limit=64), out=tmp_path / "y.h5")
    assert wider.model.output_shape((1, 8, 8)) == (12,) and wider.config.num_classes == 12


def test_a_model_that_cannot_take_the_shape_is_refused_naming_those_that_can(tmp_path):
    with pytest.raises(DataError, match=r"data digits has images \(1, 8, 8\): lenet5 cannot take .* models that "
                                        r"fit \(1, 8, 8\): mlp, digits-net, digits-cnn"):
        run.new_run(RunConfig(data="digits", model="lenet5"), out=tmp_path / "x.h5")


def test_num_classes_below_the_labels_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"label [5-9] at record \d+ is outside \[0, 5\)"):
        run.new_run(RunConfig(data="digits", num_classes=5), out=tmp_path / "x.h5")
