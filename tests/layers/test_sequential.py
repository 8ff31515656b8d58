"""Sequential: gradients accumulate until zero_grad(); fused or not, a step computes the same."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dualnet as dn
from dualnet.testing import uniform


@given(st.sampled_from(["lenet5", "mlp", "lenet5-separable", "theano-lenet"]), st.integers(0, 100))
def test_parameter_gradients_accumulate_until_zero_grad(name, seed):
    model = dn.models.get(name, seed=seed, dtype=np.float64)
    x = uniform((2, 1, 28, 28), seed, low=0, high=1)
    dy = uniform((2, 10), seed + 1)
    model(x)
    model.backward(dy)
    once = [p.grad.copy() for p in model.parameters()]
    model(x)
    model.backward(dy)
    for g1, p in zip(once, model.parameters()):
        np.testing.assert_allclose(p.grad, 2 * g1, rtol=1e-12, atol=1e-14)
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


def test_fused_conv_relu_equals_separate_layers():
    fused = dn.models.lenet5(seed=3, dtype=np.float64)
    plain = dn.models.lenet5(seed=3, dtype=np.float64)
    plain.fuse = False
    x = uniform((3, 1, 28, 28), 0, low=0, high=1)
    np.testing.assert_array_equal(fused(x), plain(x))
    dy = uniform((3, 10), 1)
    # the input gradient sums in another order unfused (cpu: the plain conv's dx is a transposed
    # convolution since b6f6000, the fused step's a col2im): equal up to float64 rounding
    np.testing.assert_allclose(fused.backward(dy), plain.backward(dy), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("model_name", ["lenet5", "theano-lenet", "lenet5-classic"])
def test_sequential_training_step_is_the_same_fused_or_not(model_name):
    """model.fuse=False runs every layer on its own; fused, conv + ReLU + pooling run as one op.
    Outputs, parameter gradients and the input gradient agree."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(5, 1, 28, 28))
    labels = rng.integers(0, 10, size=5)
    results = []
    for fuse in (True, False):
        model = dn.models.get(model_name).astype(np.float64)
        model.fuse = fuse
        crit = dn.losses.SoftmaxCrossEntropy()
        model.zero_grad()
        logits = model(x)
        crit(logits, labels)
        dx = model.backward(crit.backward())
        results.append((logits, dx, [p.grad.copy() for p in model.parameters()]))
    (y1, dx1, g1), (y2, dx2, g2) = results
    np.testing.assert_allclose(y1, y2, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx1, dx2, rtol=1e-12, atol=1e-14)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_a_training_loop_needs_no_input_gradient_and_gets_none():
    model = dn.models.lenet5().astype(np.float64)
    crit = dn.losses.SoftmaxCrossEntropy()
    x = np.random.default_rng(1).uniform(0, 1, size=(3, 1, 28, 28))
    labels = np.array([1, 2, 3])
    grads = []
    for need in (True, False):
        model.zero_grad()
        crit(model(x), labels)
        out = model.backward(crit.backward(), need_input_grad=need)
        assert (out is None) == (not need)
        grads.append([p.grad.copy() for p in model.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)


def test_eval_forward_on_cpu_in_chunks_matches_the_training_forward_and_keeps_no_caches():
    """A batch larger than a chunk runs in chunks in inference (eval mode under no_grad): the
    outputs are the training forward's (the same products, image by image), and no step keeps
    anything for a backward."""
    model = dn.models.lenet5(seed=4)
    x = uniform((300, 1, 28, 28), 5, low=0, high=1).astype(np.float32)
    train_out = model(x)
    model.eval()
    with dn.no_grad():
        eval_out = model(x)
    np.testing.assert_allclose(eval_out, train_out, rtol=1e-5, atol=1e-6)
    assert all(getattr(step, "_cache", None) is None for step in model.steps())
    with dn.device("ref"):
        ref = dn.models.lenet5(seed=4).to("ref")
        ref.eval()
        np.testing.assert_allclose(eval_out, ref(x), rtol=1e-4, atol=1e-5)
