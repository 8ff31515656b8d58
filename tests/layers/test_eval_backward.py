"""Backward after an eval-mode forward: every layer differentiates what it computed in eval mode
(batch norm the affine map of its running statistics, dropout the identity); no_grad() keeps
nothing and says so."""

from __future__ import annotations

import numpy as np
import pytest
from torch_reference import assert_same, copy_parameters, dualnet_run, torch_run

import dualnet as dn
from dualnet import layers as L
from dualnet.testing import uniform

# one of every layer type, built for an input (2, 4, 6, 6) (or the features it flattens to)
SPATIAL = {
    "Conv2d": lambda: L.Conv2d(4, 3, 3, padding=1),
    "MaxPool2d": lambda: L.MaxPool2d(2),
    "AvgPool2d": lambda: L.AvgPool2d(3, 1, 1),
    "GlobalAvgPool2d": L.GlobalAvgPool2d,
    "ReLU": L.ReLU, "LeakyReLU": L.LeakyReLU, "Tanh": L.Tanh, "Sigmoid": L.Sigmoid, "Flatten": L.Flatten,
    "Dropout": lambda: L.Dropout(0.5),
    "BatchNorm2d": lambda: L.BatchNorm2d(4),
    "Residual": lambda: L.Residual(dn.Sequential(L.Conv2d(4, 4, 3, padding=1), L.BatchNorm2d(4), L.ReLU())),
    "Sequential": lambda: dn.Sequential(L.Conv2d(4, 2, 3), L.ReLU(), L.MaxPool2d(2), L.Flatten(), L.Linear(8, 3)),
    "Softmax": L.Softmax, "LogSoftmax": L.LogSoftmax,
    "ZeroPad2d": lambda: L.ZeroPad2d(1), "ConstantPad2d": lambda: L.ConstantPad2d(1, 2.0),
    "ReflectionPad2d": lambda: L.ReflectionPad2d(1), "ReplicationPad2d": lambda: L.ReplicationPad2d(1),
    "ConvTranspose2d": lambda: L.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
    "Upsample": lambda: L.Upsample(scale_factor=2, mode="bilinear"),
}
FLAT = {"Linear": lambda: L.Linear(4, 3), "BatchNorm1d": lambda: L.BatchNorm1d(4)}


def _train_statistics(layer, x):
    """A few training batches, so batch norm's running statistics are not the initial 0 and 1."""
    layer.train()
    for seed in range(3):
        layer(uniform(x.shape, seed, low=-1, high=3))
    layer.eval()


def test_every_registered_layer_is_covered():
    assert set(SPATIAL) | set(FLAT) >= set(L.LAYER_TYPES)


@pytest.mark.parametrize("name", sorted({**SPATIAL, **FLAT}))
def test_every_layer_has_a_gradient_after_an_eval_mode_forward(name):
    """gradcheck in eval mode: the analytic input and parameter gradients of the eval-mode function
    match its central differences (dropout is then the identity, batch norm uses running stats)."""
    layer = ({**SPATIAL, **FLAT}[name])().astype(np.float64)
    x = uniform((2, 4, 6, 6) if name in SPATIAL else (3, 4), 11, low=-1, high=1)
    _train_statistics(layer, x)
    dn.gradcheck(layer, x, mode="eval")


def test_backward_after_a_no_grad_forward_is_explained():
    layer = L.Conv2d(1, 1, 3)
    with dn.no_grad():
        layer(np.zeros((1, 1, 5, 5), np.float32))
    with pytest.raises(RuntimeError, match="Conv2d: backward.* no_grad"):
        layer.backward(np.zeros((1, 1, 3, 3), np.float32))


def test_input_gradient_of_a_trained_model_in_eval_mode_matches_finite_differences_of_its_logit():
    """Saliency: d(logit of class 3)/d(image) of an eval-mode LeNet-5 with batch norm."""
    model = dn.Sequential(L.Conv2d(1, 4, 3, padding=1), L.BatchNorm2d(4), L.ReLU(), L.MaxPool2d(2), L.Flatten(),
                          L.Linear(4 * 7 * 7, 5)).astype(np.float64)
    x = uniform((1, 1, 14, 14), 3)
    _train_statistics(model, x)
    dy = np.zeros((1, 5))
    dy[0, 3] = 1
    model(x)
    dx = model.backward(dy)
    eps, i = 1e-6, (0, 0, 5, 6)
    plus, minus = x.copy(), x.copy()
    plus[i] += eps
    minus[i] -= eps
    assert dx[i] == pytest.approx((model(plus)[0, 3] - model(minus)[0, 3]) / (2 * eps), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("dev", ["ref", "cpu", "emu"])
def test_eval_mode_backward_through_batch_norm_and_dropout_matches_pytorch(dev):
    torch = pytest.importorskip("torch")
    layers = dn.Sequential(L.Conv2d(3, 4, 3, padding=1), L.BatchNorm2d(4), L.ReLU(), L.Dropout(0.3),
                           L.MaxPool2d(2), L.Conv2d(4, 2, 3)).astype(np.float64)
    x = uniform((2, 3, 8, 8), 5)
    _train_statistics(layers, x)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                 torch.nn.Dropout(0.3), torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 2, 3)).double()
    copy_parameters(layers, module)
    bn = layers[1]
    module[1].running_mean.copy_(torch.from_numpy(bn.running_mean))
    module[1].running_var.copy_(torch.from_numpy(bn.running_var))
    module.eval()
    dy = uniform((2, 2, 2, 2), 6)
    assert_same(dualnet_run(dev, layers, x, dy, train=False), torch_run(module, x, dy))
