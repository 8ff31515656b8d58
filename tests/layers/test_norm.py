"""BatchNorm1d / BatchNorm2d: gradients, the statistics they promise, devices, and PyTorch.

Every test here runs on "ref" and "cpu" (tests/layers/conftest.py); the device-agreement and
PyTorch tests add "emu". The PyTorch tests skip where torch is not installed (CI); the others
check the same promises from first principles.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dualnet as dn
from dualnet import layers as L
from dualnet.testing import assert_devices_agree, norm_shapes, uniform

RTOL = 1e-6


def _bn(shape, **kwargs):
    return (L.BatchNorm2d if len(shape) == 4 else L.BatchNorm1d)(shape[1], **kwargs)


def _randomise_affine(layer, seed):
    gen = np.random.default_rng(seed)
    if layer.weight is not None:
        # host values moved explicitly: on "emu" (as on a GPU) a host array cannot be assigned into
        w = gen.uniform(0.5, 2.0, layer.weight.shape).astype(layer.weight.data.dtype)
        b = gen.uniform(-1, 1, layer.bias.shape).astype(layer.bias.data.dtype)
        layer.weight.data[...] = dn.to_device(w, layer.device)
        layer.bias.data[...] = dn.to_device(b, layer.device)


@given(norm_shapes(2), st.booleans(), st.integers(0, 2**16))
def test_batchnorm2d_gradient_matches_numerical(shape, affine, seed):
    layer = L.BatchNorm2d(shape[1], affine=affine)
    _randomise_affine(layer, seed)
    dn.gradcheck(layer, uniform(shape, seed, low=-2, high=3), rtol=RTOL)


@given(st.integers(0, 1).flatmap(norm_shapes), st.booleans(), st.integers(0, 2**16))
def test_batchnorm1d_gradient_matches_numerical(shape, affine, seed):
    layer = L.BatchNorm1d(shape[1], affine=affine)
    _randomise_affine(layer, seed)
    dn.gradcheck(layer, uniform(shape, seed, low=-2, high=3), rtol=RTOL)


@given(st.integers(0, 2).flatmap(norm_shapes), st.integers(0, 2**16))
def test_batchnorm_training_output_has_zero_mean_and_unit_variance_per_channel(shape, seed):
    layer = _bn(shape, eps=1e-5).astype(np.float64)
    x = uniform(shape, seed, low=-3, high=5)
    y = layer(x)
    axes = (0, *range(2, len(shape)))
    var = x.var(axis=axes)
    np.testing.assert_allclose(y.mean(axis=axes), 0, atol=1e-12)
    # the normalised variance is var / (var + eps): 1 up to eps
    np.testing.assert_allclose(y.var(axis=axes), var / (var + 1e-5), rtol=1e-10)


@given(norm_shapes(2), st.integers(1, 5), st.floats(0.0, 1.0), st.integers(0, 2**16))
def test_running_statistics_after_k_steps_follow_the_momentum_recursion(shape, k, momentum, seed):
    layer = L.BatchNorm2d(shape[1], momentum=momentum).astype(np.float64)
    batches = [uniform(shape, seed + i, low=-2, high=4) * (i + 1) for i in range(k)]
    for x in batches:
        layer(x)
    m = shape[0] * shape[2] * shape[3]
    # closed form of r_k = (1 - mu) r_{k-1} + mu s_k from r_0 (0 for the mean, 1 for the variance)
    decay = [(1 - momentum) ** (k - 1 - i) * momentum for i in range(k)]
    mean = sum(d * x.mean(axis=(0, 2, 3)) for d, x in zip(decay, batches))
    var = (1 - momentum) ** k + sum(d * x.var(axis=(0, 2, 3)) * m / (m - 1) for d, x in zip(decay, batches))
    np.testing.assert_allclose(dn.to_numpy(layer.running_mean), mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dn.to_numpy(layer.running_var), var, rtol=1e-10, atol=1e-12)
    assert int(dn.to_numpy(layer.num_batches_tracked)) == k


@given(st.integers(0, 2).flatmap(norm_shapes), st.booleans(), st.integers(0, 2**16))
def test_eval_mode_is_the_affine_map_of_the_running_statistics(shape, affine, seed):
    layer = _bn(shape, affine=affine).astype(np.float64)
    _randomise_affine(layer, seed)
    layer(uniform(shape, seed, low=-1, high=2))  # one training step moves the running statistics
    layer.eval()
    per_channel = (1, -1) + (1,) * (len(shape) - 2)
    x = uniform(shape, seed + 1)
    before = (dn.to_numpy(layer.running_mean).copy(), dn.to_numpy(layer.running_var).copy())
    y = layer(x)
    scale = 1 / np.sqrt(before[1] + layer.eps)
    if affine:
        scale = scale * layer.weight.data
    want = (x - before[0].reshape(per_channel)) * scale.reshape(per_channel)
    if affine:
        want = want + layer.bias.data.reshape(per_channel)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-14)
    # eval never updates the running statistics
    np.testing.assert_array_equal(dn.to_numpy(layer.running_mean), before[0])
    np.testing.assert_array_equal(dn.to_numpy(layer.running_var), before[1])


def _train_step(shape, affine, momentum, eps, seed, dtype):
    """A function of (x, dy) giving what one training step and one eval forward produce."""

    def run(x, dy):
        layer = _bn(shape, affine=affine, momentum=momentum, eps=eps).astype(dtype)
        _randomise_affine(layer, seed)
        y = layer(x)
        dx = layer.backward(dy)
        grads = [p.grad for p in layer.parameters()]
        stats = (layer.running_mean, layer.running_var)
        layer.eval()
        return (y, dx, *grads, *stats, layer(x))

    return run


@given(st.integers(0, 2).flatmap(norm_shapes), st.booleans(), st.sampled_from([np.float64, np.float32]),
       st.integers(0, 2**16))
def test_batchnorm_agrees_on_ref_cpu_and_emu(shape, affine, dtype, seed):
    x, dy = uniform(shape, seed, dtype, -2, 3), uniform(shape, seed + 1, dtype)
    assert_devices_agree(_train_step(shape, affine, 0.1, 1e-5, seed, dtype), x, dy)


def test_buffers_are_named_moved_and_cast():
    model = L.Sequential(L.Conv2d(2, 3, 3), L.BatchNorm2d(3))
    assert [n for n, _ in model.named_buffers()] == ["bn1.running_mean", "bn1.running_var",
                                                     "bn1.num_batches_tracked"]
    assert [n for n, _ in model.named_parameters()] == ["conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias"]
    model.astype(np.float64)
    bn = model["bn1"]
    assert bn.running_mean.dtype == bn.running_var.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64  # counters keep their type
    model.to("emu")
    assert all(b.dtype.kind in "fi" for _, b in model.named_buffers())
    assert bn.device.name == "emu"
    y = model(dn.to_device(uniform((2, 2, 5, 5)), "emu"))
    assert y.shape == (2, 3, 3, 3)


def test_momentum_one_keeps_the_last_batch_and_zero_keeps_the_start():
    x = uniform((4, 3, 2, 2), 7, low=1, high=3)
    last = L.BatchNorm2d(3, momentum=1.0).astype(np.float64)
    last(x)
    np.testing.assert_allclose(last.running_mean, x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(last.running_var, x.var(axis=(0, 2, 3), ddof=1), rtol=1e-12)
    frozen = L.BatchNorm2d(3, momentum=0.0).astype(np.float64)
    frozen(x)
    np.testing.assert_array_equal(frozen.running_mean, 0)
    np.testing.assert_array_equal(frozen.running_var, 1)


@pytest.mark.parametrize("make, shape, match", [
    (lambda: L.BatchNorm2d(3), (2, 4, 3, 3), "expected 3 channels"),
    (lambda: L.BatchNorm2d(3), (2, 3, 3), r"\(N, C, H, W\)"),
    (lambda: L.BatchNorm1d(3), (2, 3, 2, 2), r"\(N, C\) or \(N, C, L\)"),
    (lambda: L.BatchNorm1d(3), (1, 3), "more than 1 value per channel"),
])
def test_batchnorm_rejects_inputs_it_cannot_take(make, shape, match):
    with pytest.raises(ValueError, match=match):
        make()(np.zeros(shape, np.float32))


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_features=0), "num_features"), (dict(num_features=2, eps=0), "eps"),
    (dict(num_features=2, momentum=1.5), "momentum"), (dict(num_features=2, affine="yes"), "affine"),
])
def test_batchnorm_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        L.BatchNorm2d(**kwargs)


def test_batchnorm_config_round_trips():
    layer = L.BatchNorm1d(4, eps=1e-3, momentum=0.2, affine=False)
    model = L.from_config(L.Sequential(layer).config())
    again = model.layers[0]
    assert type(again) is L.BatchNorm1d and again.config() == layer.config() and again.weight is None


# --- against PyTorch (skipped where torch is not installed) ---------------------------------------


@pytest.mark.parametrize("dev", ["ref", "cpu", "emu"])
@given(st.integers(0, 2).flatmap(norm_shapes), st.booleans(), st.sampled_from([0.1, 0.5]), st.integers(0, 2**16))
def test_batchnorm_matches_pytorch_in_training_and_eval(dev, shape, affine, momentum, seed):
    torch = pytest.importorskip("torch")
    x, dy = uniform(shape, seed, low=-2, high=3), uniform(shape, seed + 1)
    y, dx, *rest = (dn.to_numpy(o) for o in _run_on(dev, _train_step(shape, affine, momentum, 1e-5, seed,
                                                                       np.float64), x, dy))
    ref = (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(
        shape[1], eps=1e-5, momentum=momentum, affine=affine, dtype=torch.float64)
    host = _bn(shape, affine=affine).astype(np.float64)
    _randomise_affine(host, seed)
    if affine:
        with torch.no_grad():
            ref.weight.copy_(torch.from_numpy(host.weight.data))
            ref.bias.copy_(torch.from_numpy(host.bias.data))
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = ref(tx)
    ty.backward(torch.from_numpy(dy))
    want = [ty.detach().numpy(), tx.grad.numpy()]
    if affine:
        want += [ref.weight.grad.numpy(), ref.bias.grad.numpy()]
    want += [ref.running_mean.numpy(), ref.running_var.numpy()]
    ref.eval()
    want.append(ref(tx).detach().numpy())
    for got, exp in zip([y, dx, *rest], want):
        np.testing.assert_allclose(got, exp, rtol=1e-9, atol=1e-11)


def _run_on(dev, fn, *inputs):
    with dn.device(dev):
        return fn(*(dn.to_device(a, dev) for a in inputs))
