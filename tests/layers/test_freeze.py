"""Frozen parameters: no gradient, no optimizer update, kept by checkpoints; freeze()/unfreeze()."""

from __future__ import annotations

import numpy as np
import pytest

import dualnet as dn
from dualnet import layers as L
from dualnet.testing import uniform


def _model(seed=0):
    return dn.Sequential(L.Conv2d(1, 3, 3, seed=seed), L.BatchNorm2d(3), L.ReLU(), L.MaxPool2d(2), L.Flatten(),
                         L.Linear(48, 4, seed=seed + 1), L.ReLU(), L.Linear(4, 3, seed=seed + 2),
                         input_shape=(1, 10, 10))


def _step(model, opt, seed):
    x = uniform((4, 1, 10, 10), seed, dtype=np.float32)
    opt.zero_grad()
    model(x)
    model.backward(uniform((4, 3), seed + 1, dtype=np.float32), need_input_grad=False)
    opt.step()


def test_freeze_and_unfreeze_set_requires_grad_on_every_parameter_below():
    model = _model()
    assert all(p.requires_grad for p in model.parameters())
    assert model["conv1"].freeze() is model["conv1"]
    assert [n for n, p in model.named_parameters() if not p.requires_grad] == ["conv1.weight", "conv1.bias"]
    model.freeze()
    assert not any(p.requires_grad for p in model.parameters())
    model.unfreeze()
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("frozen", ["conv1", "bn1", "fc1", "fc2"])
def test_a_frozen_layer_gets_no_gradient_and_the_others_do(frozen):
    model = _model()
    model[frozen].freeze()
    model(uniform((4, 1, 10, 10), 1, dtype=np.float32))
    dx = model.backward(uniform((4, 3), 2, dtype=np.float32))
    assert dx.shape == (4, 1, 10, 10)
    for name, p in model.named_parameters():
        assert bool(np.any(p.grad != 0)) == p.requires_grad, name


@pytest.mark.parametrize("optimizer", [lambda ps: dn.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
                                       lambda ps: dn.optim.Adam(ps, lr=0.01, weight_decay=0.01),
                                       lambda ps: dn.optim.AdamW(ps, lr=0.01)])
def test_optimizers_leave_frozen_parameters_unchanged_and_update_them_once_unfrozen(optimizer):
    model = _model()
    opt = optimizer(model.parameters())
    _step(model, opt, 0)  # the optimizer has packed every parameter once
    model["conv1"].freeze()
    model["bn1"].weight.requires_grad = False
    frozen = {n: p.data.copy() for n, p in model.named_parameters() if not p.requires_grad}
    others = {n: p.data.copy() for n, p in model.named_parameters() if p.requires_grad}
    for seed in range(1, 4):
        _step(model, opt, seed)
    params = dict(model.named_parameters())
    for name, before in frozen.items():
        np.testing.assert_array_equal(params[name].data, before, err_msg=name)
    assert all(np.any(params[n].data != before) for n, before in others.items())
    model.unfreeze()
    _step(model, opt, 9)
    assert all(np.any(params[n].data != before) for n, before in frozen.items())


def test_backward_without_input_gradient_stops_at_the_first_trainable_layer():
    model = _model()
    model["conv1"].freeze()
    model["bn1"].freeze()
    model(uniform((2, 1, 10, 10), 0, dtype=np.float32))
    ran = []
    for layer in model.steps()[:3]:
        original = layer.backward
        layer.backward = lambda dy, need_input_grad=True, f=original, name=layer.name: ran.append(name) or f(
            dy, need_input_grad)
    model.backward(uniform((2, 3), 1, dtype=np.float32), need_input_grad=False)
    assert ran == []  # conv1, bn1 and the ReLU before the first trainable layer are skipped


def test_checkpoints_keep_which_parameters_are_frozen(tmp_path):
    model = _model()
    model["fc1"].freeze()
    model["bn1"].bias.requires_grad = False
    dn.save(model, tmp_path / "m.h5")
    loaded = dn.load(tmp_path / "m.h5")
    assert ([n for n, p in loaded.named_parameters() if not p.requires_grad]
            == ["bn1.bias", "fc1.weight", "fc1.bias"])


def test_gradcheck_skips_frozen_parameters_and_checks_the_rest():
    layer = L.Linear(3, 2).astype(np.float64)
    layer.weight.requires_grad = False
    report = dn.gradcheck(layer, uniform((2, 3), 0))
    assert [r.name for r in report.results] == ["input", "bias"]
