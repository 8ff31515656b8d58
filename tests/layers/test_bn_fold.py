"""Batch norm folded into the preceding convolution at inference (dualnet/layers/bn_fold.py).

The folded forward must equal the unfused eval forward within float32 rounding, on every device;
it happens only under no_grad() in eval mode, leaves the model's parameters, buffers and
checkpoints as they were, and never stands in for a forward that backward will differentiate.
Every test here runs on "ref" and "cpu" (tests/layers/conftest.py); one adds "emu".
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dualnet as dn
from dualnet import layers as L
from dualnet.layers.bn_fold import FoldedConv, eval_pass
from dualnet.testing import assert_devices_agree, uniform

EPS32 = float(np.finfo(np.float32).eps)


@st.composite
def conv_bn(draw):
    """(model kwargs, input shape): a Conv2d (+ BatchNorm2d) (+ ReLU) of random geometry."""
    groups = draw(st.sampled_from([1, 1, 2]))
    cin = groups * draw(st.integers(1, 3))
    cout = groups * draw(st.integers(1, 4))
    k = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 2))
    pad = draw(st.integers(0, k - 1))
    h = draw(st.integers(k, 7))
    return dict(cin=cin, cout=cout, k=k, stride=stride, pad=pad, groups=groups, bias=draw(st.booleans()),
                affine=draw(st.booleans()), relu=draw(st.booleans()),
                eps=draw(st.sampled_from([1e-5, 1e-3, 0.1]))), (draw(st.integers(1, 3)), cin, h, h)


def _model(spec, seed, dtype=np.float32):
    """conv -> bn (-> relu) with seeded weights, affine map and running statistics (not 0 and 1)."""
    conv = L.Conv2d(spec["cin"], spec["cout"], spec["k"], stride=spec["stride"], padding=spec["pad"],
                    groups=spec["groups"], bias=spec["bias"], seed=seed)
    bn = L.BatchNorm2d(spec["cout"], eps=spec["eps"], affine=spec["affine"])
    model = dn.Sequential(conv, bn, *([L.ReLU()] if spec["relu"] else [])).astype(dtype)
    gen = np.random.default_rng(seed)
    c = spec["cout"]

    def put(array, values):  # host values moved explicitly: "emu" (as a GPU) refuses host operands
        array[...] = dn.to_device(values.astype(dtype), bn.device)

    put(bn.running_mean, gen.normal(0, 1, c))
    put(bn.running_var, gen.uniform(0.01, 4, c))
    if spec["affine"]:
        put(bn.weight.data, gen.normal(0, 2, c))
        put(bn.bias.data, gen.normal(0, 1, c))
    if spec["bias"]:
        put(conv.bias.data, gen.normal(0, 1, c))
    return model.eval()


def _unfused(model, x):
    """The eval forward without folding: with gradients recorded, nothing folds."""
    return model(x)


def _folded(model, x):
    with dn.no_grad():
        return model(x)


def _rounding_bound(model, x):
    """Elementwise float32 rounding bound of conv + batch norm: (K + 8) eps times the sum of the
    magnitudes of every term (K = C // groups * kh * kw products, then the affine map's terms)."""
    conv, bn = model.layers[0], model.layers[1]
    ref = dn.Sequential(L.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                                 padding=conv.padding, groups=conv.groups, bias=False)).astype(np.float64)
    ref.layers[0].weight.data[...] = np.abs(conv.weight.data)
    var = bn.running_var.astype(np.float64)
    s = np.abs(bn.weight.data if bn.weight is not None else 1.0) / np.sqrt(var + bn.eps)
    mags = ref(np.abs(x).astype(np.float64)) * s.reshape(1, -1, 1, 1)
    extra = np.abs(bn.running_mean) * s + (np.abs(bn.bias.data) if bn.bias is not None else 0)
    if conv.bias is not None:
        extra = extra + np.abs(conv.bias.data) * s
    k = conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1]
    return (k + 8) * EPS32 * (mags + extra.reshape(1, -1, 1, 1))


@given(conv_bn(), st.integers(0, 2**16))
def test_folded_eval_matches_unfused_within_rounding(spec_shape, seed):
    spec, shape = spec_shape
    model = _model(spec, seed)
    x = uniform(shape, seed, np.float32, -2, 2)
    unfused, folded = _unfused(model, x), _folded(model, x)
    assert any(isinstance(s, FoldedConv) for s in model._ran)  # the folded path ran
    assert folded.dtype == np.float32 and folded.shape == unfused.shape
    bound = _rounding_bound(model, x)
    worst = float(np.max(np.abs(folded.astype(np.float64) - unfused) - bound))
    assert worst <= 0, f"folded differs from unfused by more than float32 rounding (excess {worst})"


@given(conv_bn(), st.integers(0, 2**16))
def test_folded_float64_matches_unfused_to_float64_rounding(spec_shape, seed):
    spec, shape = spec_shape
    model = _model(spec, seed, np.float64)
    x = uniform(shape, seed, np.float64, -2, 2)
    scale = max(1.0, float(np.abs(_unfused(model, x)).max()))
    np.testing.assert_allclose(_folded(model, x), _unfused(model, x), rtol=1e-12, atol=1e-12 * scale)


@given(conv_bn(), st.integers(0, 2**16))
def test_folded_eval_agrees_on_ref_cpu_and_emu(spec_shape, seed):
    spec, shape = spec_shape
    x = uniform(shape, seed, np.float32, -2, 2)

    def run(x):
        model = _model(spec, seed)  # built on the active device
        return _folded(model, x)

    assert_devices_agree(run, x, reduction=spec["cin"] * spec["k"] ** 2, scale=4.0)


def test_folding_only_in_eval_without_gradients_and_with_fusion_on():
    spec = dict(cin=2, cout=3, k=3, stride=1, pad=1, groups=1, bias=True, affine=True, relu=True, eps=1e-5)
    model = _model(spec, 0)
    x = uniform((2, 2, 5, 5), 0, np.float32)

    def folded_steps(model, no_grad):
        if no_grad:
            with dn.no_grad():
                model(x)
        else:
            model(x)
        return [s for s in model._ran if isinstance(s, FoldedConv)]

    assert len(folded_steps(model, True)) == 1
    assert folded_steps(model, False) == []  # eval, recording: backward needs the unfused layers
    assert folded_steps(model.train(), True) == []  # training: batch statistics
    unfusing = _model(spec, 0)
    unfusing.fuse = False
    assert folded_steps(unfusing, True) == []


def test_a_conv_subclass_or_a_training_batch_norm_is_not_folded():
    class MyConv(L.Conv2d):
        pass

    model = dn.Sequential(MyConv(2, 3, 3), L.BatchNorm2d(3), L.Conv2d(3, 3, 1), L.BatchNorm2d(3)).eval()
    model.layers[3].train()
    with dn.no_grad():
        model(uniform((1, 2, 5, 5), 0, np.float32))
    assert not any(isinstance(s, FoldedConv) for s in model._ran)


def test_nothing_is_stored_in_the_model():
    model = dn.models.get("resnet8").eval()
    before_p = {n: p.data.copy() for n, p in model.named_parameters()}
    before_b = {n: np.array(b, copy=True) for n, b in model.named_buffers()}
    with dn.no_grad():
        model(uniform((2, 3, 32, 32), 0, np.float32))
    assert {n: p.data for n, p in model.named_parameters()}.keys() == before_p.keys()
    assert {n for n, _ in model.named_buffers()} == set(before_b)
    for n, p in model.named_parameters():
        np.testing.assert_array_equal(p.data, before_p[n])
    for n, b in model.named_buffers():
        np.testing.assert_array_equal(b, before_b[n])


def test_resnet8_folded_eval_matches_unfused():
    model = dn.models.get("resnet8", seed=3)
    model.train()
    for seed in range(2):  # running statistics away from 0 and 1
        model(uniform((8, 3, 32, 32), seed, np.float32, 0, 1))
    model.eval()
    x = uniform((4, 3, 32, 32), 9, np.float32, 0, 1)
    unfused = _unfused(model, x)
    folded = _folded(model, x)
    np.testing.assert_allclose(folded, unfused, rtol=1e-4, atol=1e-4 * float(np.abs(unfused).max()))
    # every conv + batch norm folded: the stem, both of each block's body, each downsampling shortcut
    blocks = [lay for lay in model.layers if isinstance(lay, L.Residual)]
    assert isinstance(model._ran[0], FoldedConv)
    for res in blocks:
        assert [type(s) for s in res.body._ran] == [FoldedConv, FoldedConv]
        assert res.shortcut is None or [type(s) for s in res.shortcut._ran] == [FoldedConv]


def test_backward_after_eval_forward_differentiates_the_unfused_layers():
    spec = dict(cin=2, cout=3, k=3, stride=1, pad=1, groups=1, bias=True, affine=True, relu=False, eps=1e-5)
    model = _model(spec, 1, np.float64)
    x = uniform((2, 2, 5, 5), 1, np.float64)
    with dn.no_grad():
        model(x)  # folded
    y = model(x)  # eval, recorded: unfused
    model.zero_grad()
    model.backward(np.ones_like(y))
    bn = model.layers[1]
    s = bn.weight.data / np.sqrt(bn.running_var + bn.eps)
    z = model.layers[0](x)
    np.testing.assert_allclose(bn.bias.grad, np.ones_like(y).sum(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(model.layers[0].bias.grad, s * (y.size // y.shape[1]), rtol=1e-12)
    np.testing.assert_allclose(bn.weight.grad, ((z - bn.running_mean.reshape(1, -1, 1, 1)) / np.sqrt(
        bn.running_var + bn.eps).reshape(1, -1, 1, 1)).sum(axis=(0, 2, 3)), rtol=1e-10)


def test_backward_after_a_folded_forward_raises():
    spec = dict(cin=2, cout=3, k=3, stride=1, pad=1, groups=1, bias=True, affine=True, relu=True, eps=1e-5)
    model = _model(spec, 2)
    x = uniform((2, 2, 5, 5), 2, np.float32)
    model(x)  # recorded: the layers hold caches
    with dn.no_grad():
        y = model(x)
    with pytest.raises(RuntimeError, match="no_grad"):
        model.backward(np.ones_like(y))
    assert model.layers[0]._cache is None and model.layers[1]._cache is None  # no stale cache left


def test_changed_statistics_are_folded_anew_and_an_eval_pass_folds_once():
    spec = dict(cin=2, cout=3, k=1, stride=1, pad=0, groups=1, bias=False, affine=False, relu=False, eps=1e-5)
    model = _model(spec, 3, np.float64)
    x = uniform((1, 2, 3, 3), 3, np.float64)
    first = _folded(model, x)
    model.layers[1].running_mean[...] += 1.0
    second = _folded(model, x)
    np.testing.assert_allclose(second, _unfused(model, x), rtol=1e-12, atol=1e-12)
    assert not np.allclose(first, second)
    with eval_pass():
        inside = _folded(model, x)
        model.layers[1].running_mean[...] += 1.0  # not allowed inside a pass: the fold is kept
        np.testing.assert_array_equal(_folded(model, x), inside)
    np.testing.assert_allclose(_folded(model, x), _unfused(model, x), rtol=1e-12, atol=1e-12)


def test_evaluate_gives_the_unfused_results():
    model = dn.models.get("resnet8", seed=4)
    model.train()
    model(uniform((8, 3, 32, 32), 0, np.float32, 0, 1))
    x = uniform((12, 3, 32, 32), 5, np.float32, 0, 1)
    data = dn.data.Dataset(x, np.arange(12) % 10, name="t")
    folded = dn.evaluate(model, data, batch_size=5)
    model.fuse = False
    for _, child in model.children():
        for layer in [child, *(c for _, c in child.children())]:
            if isinstance(layer, dn.Sequential):
                layer.fuse = False
    unfused = dn.evaluate(model, data, batch_size=5)
    np.testing.assert_allclose(folded["probabilities"], unfused["probabilities"], rtol=1e-4, atol=1e-6)
    assert folded["accuracy"] == unfused["accuracy"]


def test_only_the_outermost_sequential_runs_chunks_and_blocks_fold_once_per_forward(monkeypatch):
    """A block's body and shortcut run inside the outer forward's chunk: chunking them again would
    cut it into smaller products, and folding them per chunk would repeat the work."""
    model = dn.models.get("resnet8").eval()
    ops = model.ops
    calls = []
    real = ops.inference_in_chunks
    monkeypatch.setattr(ops, "inference_in_chunks", lambda run, x: calls.append(len(x)) or real(run, x))
    import dualnet.layers.bn_fold as bn_fold

    folds = []
    real_fold = bn_fold.fold
    monkeypatch.setattr(bn_fold, "fold", lambda conv, bn: folds.append(conv.name) or real_fold(conv, bn))
    with dn.no_grad():
        model(uniform((100, 3, 32, 32), 0, np.float32))
    assert calls == [100]
    assert len(folds) == 1 + 2 * 3 + 2  # the stem, two per block, two downsampling shortcuts
