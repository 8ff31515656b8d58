"""The residual-network fused steps (BatchNormReLU, ResidualReLU): the plan picks them for a ResNet,
they give exactly the values of their unfused layers (forward, input and parameter gradients,
running statistics) in training, eval and frozen modes, their gradients match central differences,
and the tables agree on them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_reference import assert_same, copy_parameters, dualnet_run, torch_run

import dualnet as dn
from dualnet import layers as L
from dualnet.layers.fused import BatchNormReLU, FusedStep, ResidualReLU
from dualnet.testing import assert_devices_agree, uniform


def _unfused(model):
    """Every Sequential at any depth set to run its layers one by one."""
    for _, child in model.children():
        _unfused(child)
    if isinstance(model, L.Sequential):
        model.fuse = False
    return model


def _block(c_in, c_out, stride, seed, last_bn=True):
    tail = [L.Conv2d(c_out, c_out, 3, padding=1, bias=False, seed=seed + 1)]
    if last_bn:
        tail.append(L.BatchNorm2d(c_out))
    body = L.Sequential(L.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False, seed=seed), L.BatchNorm2d(c_out),
                        L.ReLU(), *tail)
    shortcut = None
    if stride != 1 or c_in != c_out:
        shortcut = L.Sequential(L.Conv2d(c_in, c_out, 1, stride=stride, bias=False, seed=seed + 2),
                                L.BatchNorm2d(c_out))
    return L.Residual(body, shortcut)


def _net(c_in, c_out, stride, seed, last_bn=True):
    return L.Sequential(L.Conv2d(c_in, c_in, 3, padding=1, bias=False, seed=seed + 5), L.BatchNorm2d(c_in), L.ReLU(),
                        _block(c_in, c_out, stride, seed, last_bn), L.ReLU())


def _randomise(model, seed):
    """Affine maps and running statistics away from their initial 1 and 0, so each term shows."""
    gen = np.random.default_rng(seed)

    def draw(low, high, like):
        return dn.to_device(gen.uniform(low, high, like.shape).astype(like.dtype), model.device)

    for name, p in model.named_parameters():
        if name.endswith(("bn1.weight", "bn2.weight")):
            p.data[...] = draw(0.5, 2, p.data)
        elif name.endswith(("bn1.bias", "bn2.bias")):
            p.data[...] = draw(-1, 1, p.data)
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            b[...] = draw(-0.5, 0.5, b)
        elif name.endswith("running_var"):
            b[...] = draw(0.5, 2, b)
    return model


def _step(model, x, dy, mode):
    if mode == "eval":
        model.eval()
    elif mode == "frozen":
        for layer in _walk(model):
            if isinstance(layer, L.BatchNorm2d):
                layer.freeze()
    model.zero_grad()
    y = model(x)
    dx = model.backward(dy)
    return (y, dx, *(p.grad for p in model.parameters()), *(b for _, b in model.named_buffers()))


def _walk(layer):
    yield layer
    for _, child in layer.children():
        yield from _walk(child)


def test_plan_fuses_batch_norm_relu_and_residual_relu_runs_of_resnets():
    for name, blocks in (("resnet8", 3), ("resnet20", 9)):
        model = dn.models.get(name)
        kinds = [type(s) for s in model.steps()]
        assert kinds == [L.Conv2d, BatchNormReLU, *[ResidualReLU] * blocks, L.GlobalAvgPool2d, L.Linear], name
        body = model.steps()[2].res.body
        assert [type(s) for s in body.steps()] == [L.Conv2d, BatchNormReLU, L.Conv2d, L.BatchNorm2d]


def test_fused_steps_keep_the_parameter_and_buffer_names_of_the_layers():
    model = dn.models.get("resnet8")
    plain = _unfused(dn.models.get("resnet8"))
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in plain.named_parameters()]
    assert [n for n, _ in model.named_buffers()] == [n for n, _ in plain.named_buffers()]
    step = model.steps()[2]
    assert [n for n, _ in step.named_parameters()][:2] == ["res1.body.conv1.weight", "res1.body.bn1.weight"]


@pytest.mark.parametrize("mode", ["train", "eval", "frozen"])
@pytest.mark.parametrize("stride, c_out, last_bn", [(1, 2, True), (2, 3, True), (1, 3, False), (1, 2, False)])
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_fused_resnet_steps_give_exactly_the_unfused_values(mode, stride, c_out, last_bn, seed):
    x = uniform((3, 2, 6, 6), seed)
    fused = _randomise(_net(2, c_out, stride, seed, last_bn).astype(np.float64), seed)
    plain = _unfused(_randomise(_net(2, c_out, stride, seed, last_bn).astype(np.float64), seed))
    assert any(isinstance(s, ResidualReLU) for s in fused.steps())
    dy = uniform((3, *fused.output_shape(x.shape[1:])), seed + 1)
    for got, want in zip(_step(fused, x, dy, mode), _step(plain, x, dy, mode), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("stride, c_out, last_bn", [(1, 2, True), (2, 3, True), (1, 2, False)])
@pytest.mark.parametrize("seed", [0, 1])
def test_fused_resnet_steps_gradient_matches_numerical(mode, stride, c_out, last_bn, seed):
    model = _randomise(_net(2, c_out, stride, seed, last_bn).astype(np.float64), seed)
    dn.gradcheck(model, uniform((2, 2, 5, 5), seed), rtol=1e-6, mode=mode)


def test_batch_norm_relu_step_gradient_matches_numerical_for_batchnorm1d():
    model = L.Sequential(L.Linear(3, 4, seed=0), L.BatchNorm1d(4), L.ReLU())
    assert type(model.steps()[1]) is BatchNormReLU
    dn.gradcheck(model, uniform((5, 3), 0), rtol=1e-6)
    dn.gradcheck(model, uniform((5, 3), 0), rtol=1e-6, mode="eval")


def test_fused_resnet_steps_without_input_gradient_keep_parameter_gradients():
    model = _randomise(_net(2, 3, 2, 0).astype(np.float64), 0)
    x, dy = uniform((2, 2, 6, 6), 0), uniform((2, 3, 3, 3), 1)
    model(x)
    model.backward(dy)
    grads = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    model(x)
    assert model.backward(dy, need_input_grad=False) is None
    for g, p in zip(grads, model.parameters(), strict=True):
        np.testing.assert_allclose(p.grad, g, rtol=1e-12, atol=1e-14)


def test_fused_resnet_steps_write_no_other_layers_cache():
    model = dn.models.get("resnet8", dtype=np.float64)
    model(uniform((2, 3, 8, 8), 0))
    inside = []  # the layers that run only inside a fused step: the step's own parts, a body's last batch norm
    for step in model.steps():
        if isinstance(step, FusedStep):
            assert step._cache is not None
            inside += step.parts
            if isinstance(step, ResidualReLU):
                inside.append(step.res.body.layers[-1])
                inside += [s for s in step.res.body.steps() if isinstance(s, FusedStep)]
                inside += [p for s in step.res.body.steps() if isinstance(s, FusedStep) for p in s.parts]
    for layer in inside:
        assert layer._cache is None or isinstance(layer, FusedStep), layer.name


def test_fused_resnet_steps_agree_on_ref_cpu_and_emu():
    def step(x, dy):
        model = _randomise(_net(2, 3, 2, 5).astype(np.float64), 5)
        return _step(model, x, dy, "train")

    assert_devices_agree(step, uniform((2, 2, 6, 6), 1), uniform((2, 3, 3, 3), 2))


def test_resnet8_float32_training_agrees_on_ref_and_cpu():
    def step(x, dy):
        model = dn.models.get("resnet8", seed=3)
        return _step(model, x, dy, "train")

    assert_devices_agree(step, uniform((4, 3, 16, 16), 1, np.float32), uniform((4, 10), 2, np.float32),
                         devices=("ref", "cpu"), rtol=2e-4, atol=2e-5)


# --- against PyTorch (skipped where torch is not installed) ---------------------------------------


def _torch_net(torch, net):
    """The torch twin of _net(c_in, c_out, stride, ...) with its parameters and running statistics."""
    from torch import nn

    block = net.layers[3]

    def twin(layer):
        if isinstance(layer, L.Conv2d):
            return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                             bias=layer.bias is not None, dtype=torch.float64)
        if isinstance(layer, L.BatchNorm2d):
            return nn.BatchNorm2d(layer.num_features, dtype=torch.float64)
        return nn.ReLU()

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(*(twin(lay) for lay in block.body.layers))
            self.shortcut = nn.Sequential(*(twin(lay) for lay in block.shortcut.layers)) if block.shortcut else None

        def forward(self, x):
            return self.body(x) + (x if self.shortcut is None else self.shortcut(x))

    module = nn.Sequential(*(twin(lay) for lay in net.layers[:3]), Block(), nn.ReLU())
    with torch.no_grad():
        stats = [b for n, b in net.named_buffers() if not n.endswith("num_batches_tracked")]
        twins = [t for n, t in module.named_buffers() if not n.endswith("num_batches_tracked")]
        for b, t in zip(stats, twins, strict=True):
            t.copy_(torch.from_numpy(dn.to_numpy(b)))
    return module


@pytest.mark.parametrize("dev", ["ref", "cpu", "emu"])
@pytest.mark.parametrize("stride, c_out, last_bn", [(1, 2, True), (2, 3, True), (1, 3, False)])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_fused_resnet_steps_match_pytorch_in_float64(dev, stride, c_out, last_bn, mode):
    torch = pytest.importorskip("torch")
    seed = 7
    net = _randomise(_net(2, c_out, stride, seed, last_bn).astype(np.float64), seed)
    module = _torch_net(torch, net)
    copy_parameters(net, module)
    module.train(mode == "train")
    x = uniform((3, 2, 6, 6), seed)
    dy = uniform((3, *net.output_shape((2, 6, 6))), seed + 1)
    got = dualnet_run(dev, net, x, dy, train=mode == "train")
    assert_same(got, torch_run(module, x, dy))
