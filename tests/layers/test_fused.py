"""Fusion is a plan step: Sequential runs fused steps that hold the original layers and touch no
other layer's state; every layer has the same backward signature."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import dualnet as dn
from dualnet import layers as L
from dualnet.layers.fused import (
    BatchNormReLU,
    ConvReLU,
    ConvReLUMaxPool,
    FusedStep,
    LinearReLU,
    ResidualReLU,
    plan,
)
from dualnet.testing import uniform


def test_plan_fuses_conv_relu_pool_and_linear_relu_runs_of_lenet5():
    model = dn.models.lenet5()
    assert [type(s) for s in model.steps()] == [ConvReLUMaxPool, ConvReLUMaxPool, L.Flatten, LinearReLU,
                                                LinearReLU, L.Linear]
    model.fuse = False
    assert model.steps() == model.layers


def test_plan_leaves_subclasses_and_lone_layers_alone():
    class MyConv(L.Conv2d):
        pass

    layers = [MyConv(1, 2, 3), L.ReLU(), L.Conv2d(2, 2, 3), L.ReLU(), L.AvgPool2d(2), L.ReLU()]
    steps = plan(layers)
    assert steps[0] is layers[0] and steps[1] is layers[1]
    assert type(steps[2]) is ConvReLU and steps[2].parts == (layers[2], layers[3])
    assert steps[3:] == layers[4:]


def test_a_fused_step_writes_no_other_layers_cache():
    model = dn.models.lenet5(dtype=np.float64)
    x = uniform((2, 1, 28, 28), 0, low=0, high=1)
    fused_parts = [part for s in model.steps() if isinstance(s, FusedStep) for part in s.parts]
    before = {id(layer): getattr(layer, "_cache", None) for layer in fused_parts}
    model(x)
    for layer in fused_parts:  # run only inside a fused step: their own state is untouched
        assert getattr(layer, "_cache", None) is before[id(layer)], layer.name
    steps = model.steps()
    assert all(s._cache is not None for s in steps if isinstance(s, FusedStep))


def test_fused_steps_follow_the_layers_mode_and_hold_their_parameters():
    model = dn.models.lenet5()
    step = model.steps()[0]
    assert [n for n, _ in step.named_parameters()] == ["conv1.weight", "conv1.bias"]
    assert step.parts[0].weight is next(step.parameters())
    model.eval()
    assert not step.training
    with dn.no_grad():
        model(uniform((1, 1, 28, 28), 0, dtype=np.float32, low=0, high=1))
    assert step._cache is None  # inference (eval mode under no_grad) keeps nothing for backward
    model(uniform((1, 1, 28, 28), 0, dtype=np.float32, low=0, high=1))
    assert step._cache is not None  # eval mode alone keeps it: a trained model can be differentiated
    model.train()
    assert step.training


FUSED_STEPS = {ConvReLU, LinearReLU, ConvReLUMaxPool, BatchNormReLU, ResidualReLU}


@pytest.mark.parametrize("cls", sorted(set(L.LAYER_TYPES.values()) | {L.Sequential} | FUSED_STEPS,
                                       key=lambda c: c.__name__))
def test_every_layer_backward_has_the_same_signature(cls):
    params = list(inspect.signature(cls.backward).parameters.values())
    assert [p.name for p in params] == ["self", "dy", "need_input_grad"], cls
    assert params[2].default is True


@pytest.mark.parametrize("make, shape", [(lambda: L.Conv2d(2, 3, 3), (2, 2, 6, 6)),
                                         (lambda: L.Linear(4, 3), (2, 4)),
                                         (lambda: L.MaxPool2d(2), (2, 2, 4, 4)),
                                         (lambda: L.ReLU(), (2, 5)), (lambda: L.Flatten(), (2, 2, 3)),
                                         (lambda: L.Dropout(0.5), (2, 5))])
def test_backward_without_input_gradient_returns_none_and_keeps_parameter_gradients(make, shape):
    layer = make().astype(np.float64)
    x = uniform(shape, 0)
    y = layer(x)
    dy = uniform(y.shape, 1)
    assert layer.backward(dy) is not None
    grads = [p.grad.copy() for p in layer.parameters()]
    layer.zero_grad()
    layer(x)
    assert layer.backward(dy, need_input_grad=False) is None
    for g, p in zip(grads, layer.parameters()):
        np.testing.assert_array_equal(p.grad, g)
