"""Bad arguments to the library (layers, optimizers, fit/evaluate, loaders, devices) raise an
error whose message names the argument and says what is allowed."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dualnet as dn
from dualnet import data
from dualnet import layers as L
from dualnet.errors import DataError, DualnetError
from dualnet.train import TrainState

P = [dn.Parameter(np.zeros(3, np.float32))]


@pytest.mark.parametrize("make,match", [
    (lambda: L.Conv2d(-1, 4, 3), r"Conv2d: in_channels must be a positive int, got -1"),
    (lambda: L.Conv2d(1, 0, 3), r"Conv2d: out_channels must be a positive int, got 0"),
    (lambda: L.Conv2d(1, 4, 3, stride=0), r"Conv2d: stride must be >= 1"),
    (lambda: L.Conv2d(1, 4, 3, padding=-1), r"Conv2d: padding must be >= 0"),
    (lambda: L.Conv2d(2, 4, 3, groups=3), r"groups=3 must divide in_channels=2"),
    (lambda: L.Conv2d(1, 4, 3, init="zeros"), r"unknown initialiser 'zeros'; choose one of he, glorot, lecun"),
    (lambda: L.Linear(0, 3), r"Linear: in_features must be a positive int, got 0"),
    (lambda: L.Linear(3, True), r"Linear: out_features must be a positive int, got True"),
    (lambda: L.MaxPool2d(0), r"MaxPool2d: kernel_size must be >= 1"),
    (lambda: L.AvgPool2d(2, padding=2), r"padding \(2, 2\) must be at most half the kernel size"),
    (lambda: L.Dropout(float("nan")), r"Dropout: p must be in \[0, 1\)"),
    (lambda: dn.optim.SGD(P, lr=0), r"SGD: lr must be a positive finite number, got 0"),
    (lambda: dn.optim.SGD(P, lr=math.nan), r"SGD: lr must be a positive finite number, got nan"),
    (lambda: dn.optim.SGD(P, lr=math.inf), r"SGD: lr must be a positive finite number, got inf"),
    (lambda: dn.optim.SGD(P, lr=True), r"SGD: lr must be a positive finite number, got True"),
    (lambda: dn.optim.SGD(P, momentum=1.0), r"SGD: momentum must be in \[0, 1\)"),
    (lambda: dn.optim.SGD(P, weight_decay=math.inf), r"SGD: weight_decay must be a finite number >= 0, got inf"),
    (lambda: dn.optim.SGD(P, nesterov=True), r"nesterov=True needs momentum > 0"),
    (lambda: dn.optim.SGD([], lr=0.1), r"SGD: got no parameters"),
    (lambda: dn.optim.Adam(P, betas=(0.9,)), r"Adam: betas must be two numbers in \[0, 1\), got \(0.9,\)"),
    (lambda: dn.optim.Adam(P, betas=(0.9, math.nan)), r"Adam: betas must be two numbers in \[0, 1\)"),
    (lambda: dn.optim.Adam(P, eps=math.inf), r"Adam: eps must be a finite number > 0, got inf"),
    (lambda: dn.optim.Adam(P, weight_decay=-1), r"Adam: weight_decay must be a finite number >= 0, got -1"),
    (lambda: dn.use_device("gpu:-1"), r"unknown device 'gpu:-1': expected 'ref', 'cpu', 'gpu', 'gpu:N' \(N >= 0\) or 'emu'"),
    (lambda: dn.use_device(3), r"device must be a string such as 'ref', 'cpu', 'gpu', 'gpu:1' or 'emu', got 3"),
    (lambda: data.load("mnist", "dev"), r"unknown split 'dev'; choose one of train, val, test, all-train"),
    (lambda: data.load("mnist", limit=-1), r"limit must be >= 0, got -1"),
    (lambda: data.load("mnist", num_classes=0), r"num_classes must be >= 1, got 0"),
    (lambda: data.Dataset(np.zeros((2, 4, 4), np.uint8), np.array([0, 20000])), r"20,001 classes .* at most 10,000"),
])
def test_bad_library_arguments_say_what_is_allowed(make, match):
    with pytest.raises((ValueError, DualnetError), match=match):
        make()


@pytest.fixture(scope="module")
def tiny_set():
    rng = np.random.default_rng(0)
    return data.Dataset(rng.integers(0, 256, (16, 28, 28), dtype=np.uint8), np.arange(16) % 10, "tiny", 10)


@pytest.mark.parametrize("kwargs,match", [
    (dict(epochs=0), r"fit: epochs must be a positive integer, got 0"),
    (dict(batch_size=-4), r"fit: batch_size must be a positive integer, got -4"),
    (dict(schedule="warmup"), r"fit: unknown schedule 'warmup'; choose one of none, step, cosine"),
    (dict(state=TrainState(step=99, seen=8)), r"fit: cannot resume at step 99 of an epoch of 1 steps"),
])
def test_fit_arguments(tiny_set, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dn.fit(dn.models.lenet5(), tiny_set, None, **{"batch_size": 16, **kwargs})


def test_fit_and_evaluate_refuse_data_the_model_cannot_take(tiny_set):
    five = dn.models.lenet5(num_classes=5)
    with pytest.raises(DataError, match=r"tiny: the data has 10 classes \(labels 0..9\), but the model outputs 5"):
        dn.fit(five, tiny_set, None, epochs=1)
    with pytest.raises(DataError, match=r"tiny: images of shape \(1, 28, 28\) do not fit the model: conv1: expected "
                                        r"inputs of shape \(3, H, W\)"):
        dn.evaluate(dn.models.lenet5(in_channels=3), tiny_set)
    with pytest.raises(DataError):
        dn.evaluate(five, tiny_set)
    assert five.training  # a refused evaluation leaves the mode alone
