"""The real-model layers in a model: summary shapes equal the shapes forward gives, and a checkpoint
round trip (the layer registry) rebuilds every one with its options and the same outputs."""

from __future__ import annotations

import io

import numpy as np

import dualnet as dn
from dualnet import layers as L
from dualnet.testing import uniform


def _model():
    return dn.Sequential(
        L.ReflectionPad2d((1, 2, 0, 1)), L.Conv2d(2, 4, 3, padding="same"), L.BatchNorm2d(4), L.ReLU(),
        L.MaxPool2d(2, ceil_mode=True, dilation=1), L.Conv2d(4, 4, (2, 3), padding=(0, 1, 1, 0)),
        L.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), L.ReplicationPad2d(1),
        L.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True), L.ZeroPad2d((0, -1, 1, 0)),
        L.ConstantPad2d(1, -0.5), L.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
        L.Upsample(size=(5, 4)), L.MaxPool2d(2, 1, 1, dilation=(1, 2)), L.Flatten(), L.Linear(72, 5),
        L.LogSoftmax(), input_shape=(2, 9, 7))


def test_summary_shapes_are_the_shapes_forward_gives():
    model = _model()
    shapes = []
    x = uniform((2, 2, 9, 7), 0, dtype=np.float32)
    for layer in model.layers:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    shape = model.input_shape
    for layer, got in zip(model.layers, shapes):
        shape = layer.output_shape(shape)
        assert shape == got, layer.name
    text = model.summary(file=io.StringIO())
    assert "ConvTranspose2d" in text and "x".join(map(str, shapes[6])) in text


def test_checkpoint_round_trip_rebuilds_every_new_layer(tmp_path):
    model = _model()
    model.train()
    model(uniform((4, 2, 9, 7), 1, dtype=np.float32))  # batch-norm statistics that are not the initial ones
    dn.save(model, tmp_path / "m.h5")
    loaded = dn.load(tmp_path / "m.h5")
    assert [lay.config() for lay in loaded.layers] == [lay.config() for lay in model.layers]
    model.eval(), loaded.eval()
    x = uniform((3, 2, 9, 7), 2, dtype=np.float32)
    np.testing.assert_array_equal(loaded(x), model(x))
