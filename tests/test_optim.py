"""Optimizers follow PyTorch's update rules (written out here element by element)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dualnet as dn
from dualnet.layers import Parameter


def params(seed, n=7):
    rng = np.random.default_rng(seed)
    p = Parameter(rng.standard_normal(n))
    return p, [rng.standard_normal(n) for _ in range(4)]


@given(st.floats(1e-4, 1.0), st.sampled_from([0.0, 0.5, 0.9]), st.booleans(), st.sampled_from([0.0, 1e-2]),
       st.integers(0, 1000))
def test_sgd_matches_reference_rule(lr, momentum, nesterov, wd, seed):
    nesterov = nesterov and momentum > 0
    p, grads = params(seed)
    ref, v = p.data.copy(), np.zeros_like(p.data)
    opt = dn.optim.SGD([p], lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    for g in grads:
        p.grad[...] = g
        opt.step()
        d = g + wd * ref
        if momentum:
            v = momentum * v + d
            d = d + momentum * v if nesterov else v
        ref = ref - lr * d
    np.testing.assert_allclose(p.data, ref, rtol=1e-12, atol=1e-14)


@given(st.floats(1e-4, 1e-1), st.sampled_from([0.0, 1e-2]), st.integers(0, 1000))
def test_adam_matches_reference_rule(lr, wd, seed):
    p, grads = params(seed)
    ref, m, v = p.data.copy(), 0.0, 0.0
    b1, b2, eps = 0.9, 0.999, 1e-8
    opt = dn.optim.Adam([p], lr=lr, weight_decay=wd)
    for t, g in enumerate(grads, 1):
        p.grad[...] = g
        opt.step()
        d = g + wd * ref
        m = b1 * m + (1 - b1) * d
        v = b2 * v + (1 - b2) * d * d
        ref = ref - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(p.data, ref, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr=0), "lr must be a positive"), (dict(lr=-1), "lr must be a positive"),
    (dict(lr=float("nan")), "lr must be a positive"), (dict(lr=0.1, momentum=1.5), "momentum"),
    (dict(lr=0.1, nesterov=True), "nesterov"), (dict(lr=0.1, weight_decay=-1), "weight_decay"),
])
def test_sgd_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dn.optim.SGD([Parameter(np.zeros(2))], **kwargs)


def test_optimizer_needs_parameters():
    with pytest.raises(ValueError, match="no parameters"):
        dn.optim.Adam([])


def test_sgd_momentum_lowers_a_quadratic():
    p = Parameter(np.array([3.0, -2.0]))
    opt = dn.optim.SGD([p], lr=0.1, momentum=0.9)
    for _ in range(200):
        opt.zero_grad()
        p.grad += 2 * p.data
        opt.step()
    assert np.abs(p.data).max() < 1e-3


@given(st.floats(1e-4, 1e-1), st.sampled_from([0.0, 1e-2, 0.1]), st.integers(0, 1000))
def test_adamw_matches_pytorchs_decoupled_rule(lr, wd, seed):
    p, grads = params(seed)
    ref, m, v = p.data.copy(), 0.0, 0.0
    b1, b2, eps = 0.9, 0.999, 1e-8
    opt = dn.optim.AdamW([p], lr=lr, weight_decay=wd)
    for t, g in enumerate(grads, 1):
        p.grad[...] = g
        opt.step()
        ref = ref * (1 - lr * wd)  # decay first, outside the moments
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        ref = ref - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(p.data, ref, rtol=1e-10, atol=1e-14)
    assert dn.optim.AdamW([p]).weight_decay == 0.01 and type(dn.optim.make("adamw", [p], lr=0.1)) is dn.optim.AdamW


@pytest.mark.parametrize("make", [lambda ps: dn.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
                                  lambda ps: dn.optim.Adam(ps, lr=0.01, weight_decay=0.01),
                                  lambda ps: dn.optim.AdamW(ps, lr=0.01)], ids=["sgd", "adam", "adamw"])
def test_one_flat_update_equals_per_parameter_updates_bit_for_bit(make):
    """The whole buffer in one update: per element the arithmetic of a per-parameter update."""
    rng = np.random.default_rng(0)
    shapes = [(6, 1, 5, 5), (6,), (3, 7), (3,)]
    flat = [Parameter(rng.standard_normal(s).astype(np.float32)) for s in shapes]
    alone = [Parameter(p.data.copy()) for p in flat]
    opt = make(flat)
    singles = [make([p]) for p in alone]
    for _ in range(3):
        for a, b in zip(flat, alone):
            a.grad[...] = b.grad[...] = rng.standard_normal(a.shape).astype(np.float32)
        opt.step()
        for s in singles:
            s.step()
    for a, b in zip(flat, alone):
        assert a.data.tobytes() == b.data.tobytes()
        for k in b.state:
            assert a.state[k].tobytes() == b.state[k].tobytes()


def test_an_optimizer_over_part_of_a_model_updates_only_that_part():
    model = dn.models.lenet5(seed=0)
    last = list(model.layers[-1].parameters())
    frozen = [p.data.copy() for p in model.parameters()][:-2]
    opt = dn.optim.SGD(last, lr=0.5)
    for p in model.parameters():
        p.grad[...] = 1.0
    opt.step()
    for before, p in zip(frozen, list(model.parameters())[:-2]):
        np.testing.assert_array_equal(p.data, before)
    assert all((p.data != 0).any() for p in last)
