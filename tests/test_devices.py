"""Whole models on the kernel path: gradient checks, training steps and fits agree with "cpu"."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dualnet as dn
from dualnet import layers as L
from dualnet.testing import assert_devices_agree, conv_geometries, conv_layer_kwargs, pool_geometries, tie_free, uniform

KERNEL_DEVICES = pytest.mark.parametrize("device", ["emu", pytest.param("gpu", marks=pytest.mark.gpu)])


@KERNEL_DEVICES
@given(conv_geometries(max_size=12), pool_geometries(max_size=12), st.integers(0, 2**16))
def test_every_layer_gradient_matches_numerical_on_kernel_device(device, cg, pg, seed):
    with dn.device(device):
        conv = L.Conv2d(**conv_layer_kwargs(cg), seed=seed)
        dn.gradcheck(conv, dn.to_device(uniform((cg["n"], cg["c"], cg["h"], cg["w"]), seed)))
        x = dn.to_device(tie_free((pg["n"], pg["c"], pg["h"], pg["w"]), seed))
        dn.gradcheck(L.MaxPool2d(pg["kernel_size"], pg["stride"], pg["padding"]), x)
        dn.gradcheck(L.AvgPool2d(pg["kernel_size"], pg["stride"], pg["padding"]), x)
        dn.gradcheck(L.Linear(7, 5, seed=seed), dn.to_device(uniform((3, 7), seed)))
        away_from_kink = uniform((3, 8), seed, low=0.01, high=1) * np.sign(uniform((3, 8), seed + 1))
        for act in (L.ReLU(), L.Tanh(), L.Sigmoid()):
            dn.gradcheck(act, dn.to_device(away_from_kink))
        labels = dn.to_device(np.arange(3) % 4)
        dn.gradcheck(dn.losses.SoftmaxCrossEntropy(), dn.to_device(uniform((3, 4), seed) * 5), labels=labels)


def twenty_steps(dtype):
    def run():
        model = dn.models.lenet5(seed=5, dtype=dtype)
        opt = dn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
        crit = dn.losses.SoftmaxCrossEntropy()
        rng = np.random.default_rng(0)
        losses = []
        for _ in range(20):
            x = dn.to_device(rng.random((16, 1, 28, 28)).astype(dtype))
            y = dn.to_device(rng.integers(0, 10, 16))
            model.zero_grad()
            losses.append(crit(model(x), y))
            model.backward(crit.backward())
            opt.step()
        return (np.array(losses),) + tuple(p.data for p in model.parameters())
    return run


@KERNEL_DEVICES
def test_twenty_lenet5_training_steps_agree_with_cpu(device):
    rtol = 1e-9 if device == "emu" else 1e-7
    assert_devices_agree(twenty_steps(np.float64), devices=("cpu", device), rtol=rtol, atol=1e-12)
    assert_devices_agree(twenty_steps(np.float32), devices=("cpu", device), rtol=2e-4, atol=1e-5)


@KERNEL_DEVICES
def test_fit_on_kernel_device_reaches_the_cpu_loss(device):
    train = dn.data.load("mnist", "train", limit=512)
    histories = {}
    for name in ("cpu", device):
        with dn.device(name):
            model = dn.models.lenet5(seed=0)
            opt = dn.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
            histories[name] = dn.fit(model, train, None, epochs=1, batch_size=64, optimizer=opt, augment_shift=1)
    a, b = histories["cpu"][0], histories[device][0]
    assert abs(a["train_loss"] - b["train_loss"]) <= 1e-4 * abs(a["train_loss"])
    assert abs(a["train_acc"] - b["train_acc"]) <= 2 / 512
