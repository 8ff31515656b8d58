"""The model zoo: LeNet-5 exactly as DESIGN.md, summaries, shapes of every named model."""

from __future__ import annotations

import io

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
    shape = model.input_shape
    y = model(np.random.default_rng(0).random((3, *shape), dtype=np.float32))
    assert y.shape == (3, 10) and y.dtype == np.float32 and np.isfinite(y).all()
    assert model.output_shape(shape) == (10,)


def test_same_seed_same_weights_different_seed_different_weights():
    a, b, c = dn.models.lenet5(seed=1), dn.models.lenet5(seed=1), dn.models.lenet5(seed=2)
    assert all(np.array_equal(p.data, q.data) for p, q in zip(a.parameters(), b.parameters()))
    assert not np.array_equal(a[0].weight.data, c[0].weight.data)


def test_unknown_model_lists_available():
    with pytest.raises(ValueError, match="lenet5"):
        dn.models.get("resnet")


NEW = ["lenet5-bn", "digits-net", "resnet8", "resnet20"]


def test_new_models_are_listed_with_their_parameter_counts():
    assert set(NEW) <= set(dn.models.names())
    counts = {name: dn.models.get(name).num_parameters() for name in NEW}
    # digits-net: conv 1x1x3x3 + 1, linear 36->10, linear 10->10
    assert counts["digits-net"] == 10 + 370 + 110
    # lenet5-bn: LeNet-5 without the two conv biases (22) plus BN weight and bias (2 * 22)
    assert counts["lenet5-bn"] == 61_706 - 22 + 44
    assert counts["resnet8"] < counts["resnet20"]
    assert all(dn.models.describe(name) for name in NEW)


@pytest.mark.parametrize("name, shape", [("digits-net", (1, 8, 8)), ("resnet8", (3, 32, 32)),
                                         ("resnet20", (3, 32, 32)), ("lenet5-bn", (1, 28, 28))])
def test_new_models_train_one_step_on_their_default_input(name, shape):
    model = dn.models.get(name, seed=1)
    assert model.input_shape == shape and model.output_shape(shape) == (10,)
    x = np.random.default_rng(0).random((4, *shape), dtype=np.float32)
    loss = dn.losses.SoftmaxCrossEntropy()
    value = loss(model(x), np.arange(4) % 10)
    model.backward(loss.backward())
    assert np.isfinite(value) and all(np.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", dn.models.names())
@pytest.mark.parametrize("shape, classes", [((3, 32, 32), 7), ((2, 40, 36), 3)])
def test_every_model_takes_any_input_shape_and_class_count_that_fits(name, shape, classes):
    try:
        model = dn.models.get(name, input_shape=shape, num_classes=classes)
    except ValueError as exc:
        assert name in str(exc)
        return
    assert model.output_shape(shape) == (classes,)
    assert model.spec == {"name": name, "kwargs": {"input_shape": list(shape), "num_classes": classes}}
    assert model(np.zeros((2, *shape), np.float32)).shape == (2, classes)


def test_a_spec_rebuilds_the_same_model():
    model = dn.models.get("resnet8", input_shape=(3, 16, 16), num_classes=4, seed=5, dtype=np.float64)
    again = dn.models.get(model.spec["name"], **model.spec["kwargs"])
    assert again.config() == model.config()
    assert all(np.array_equal(p.data, q.data) for p, q in zip(model.parameters(), again.parameters()))


def test_lenet5_feature_size_follows_the_input():
    model = dn.models.lenet5(input_shape=(3, 32, 32), num_classes=100)
    assert model["fc1"].in_features == 16 * 6 * 6 and model["fc3"].out_features == 100


def test_in_channels_is_an_alias_of_the_shapes_channels():
    old = dn.models.get("lenet5", in_channels=3, seed=2)
    new = dn.models.get("lenet5", input_shape=(3, 28, 28), seed=2)
    assert all(np.array_equal(p.data, q.data) for p, q in zip(old.parameters(), new.parameters()))
    assert old.spec == new.spec


def test_an_input_too_small_names_the_model_the_layer_the_shape_and_what_fits():
    with pytest.raises(ValueError) as info:
        dn.models.get("lenet5", input_shape=(1, 8, 8))
    message = str(info.value)
    assert "lenet5" in message and "conv2" in message and "6x4x4" in message
    fits = message.split("models that fit (1, 8, 8): ")[1].split(", ")
    assert "digits-net" in fits and "lenet5" not in fits
    for name in fits:
        dn.models.get(name, input_shape=(1, 8, 8))


@pytest.mark.parametrize("kwargs, match", [(dict(input_shape=(28, 28)), "input_shape"),
                                           (dict(num_classes=0), "num_classes"),
                                           (dict(in_channels=-1), "in_channels")])
def test_bad_builder_arguments_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dn.models.get("resnet8", **kwargs)


# --- unet-mini: the encoder-decoder with additive skips -------------------------------------------


def test_unet_mini_summary_shows_the_encoder_decoder_and_its_parameter_count():
    model = dn.models.get("unet-mini")
    text = model.summary(file=io.StringIO())
    # encoder down to 32x7x7, back up through the transposed convolution and the upsampling
    for row in ("32x7x7", "ConvTranspose2d  16x14x14", "Upsample         8x28x28"):
        assert row in text
    assert model.num_parameters() == 8_234 and model.output_shape((1, 28, 28)) == (10,)


def test_unet_mini_gradcheck_in_float64():
    model = dn.models.get("unet-mini", input_shape=(1, 8, 8), num_classes=3, seed=3)
    dn.gradcheck(model, np.random.default_rng(1).random((2, 1, 8, 8)), full_limit=64, directions=3)


def test_unet_mini_fit_reduces_its_loss():
    train = dn.data.load("digits", "train", limit=320)
    model = dn.models.get("unet-mini", input_shape=train.shape, seed=0)
    history = dn.fit(model, train, None, epochs=3, batch_size=32,
                     optimizer=dn.optim.Adam(model.parameters(), lr=0.01))
    assert history[-1]["train_loss"] < 0.8 * history[0]["train_loss"]
