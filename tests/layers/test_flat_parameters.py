"""Flat parameter buffers: every Parameter a view into one buffer per (device, dtype), and
assignment to .data / .grad that keeps data, gradient and checkpoints consistent."""

from __future__ import annotations

import numpy as np
import pytest

import dualnet as dn
from dualnet.layers import Parameter
from dualnet.layers.flat import FlatBuffer, pack, zero_grads


def test_an_optimizer_packs_the_model_into_one_buffer_of_views():
    model = dn.models.lenet5(seed=0)
    before = [p.data.copy() for p in model.parameters()]
    opt = dn.optim.SGD(model.parameters(), lr=0.1)
    (buf,) = opt.buffers()
    for p, old, (offset, _) in zip(model.parameters(), before, buf.slots):
        np.testing.assert_array_equal(p.data, old)
        assert np.shares_memory(p.data, buf.data) and np.shares_memory(p.grad, buf.grad)
        assert p.data.flags.c_contiguous and offset * p.data.itemsize % 64 == 0
    assert buf.total >= sum(p.size for p in model.parameters())
    assert pack(list(model.parameters())) == [buf]  # packing again reuses the buffer


def test_zero_grad_is_one_fill_of_the_whole_buffer():
    model = dn.models.lenet5(seed=0)
    opt = dn.optim.SGD(model.parameters(), lr=0.1)
    (buf,) = opt.buffers()
    buf.grad[:] = 1.0
    model.zero_grad()
    assert not buf.grad.any()
    buf.grad[:] = 1.0
    zero_grads([model.layers[0].weight])  # a subset: only its own gradient
    assert not model.layers[0].weight.grad.any() and model.layers[0].bias.grad.all()


def test_optimizer_state_is_per_parameter_views_of_flat_state():
    model = dn.models.lenet5(seed=0)
    opt = dn.optim.Adam(model.parameters())
    for p in model.parameters():
        p.grad[...] = 0.5
    opt.step()
    (buf,) = opt.buffers()
    for p in model.parameters():
        assert set(p.state) == {"m", "v"}
        assert np.shares_memory(p.state["m"], buf.states["m"]) and p.state["m"].shape == p.shape
    # a replaced state array (as a checkpoint reader writes it) is copied in at the next step
    first = next(model.parameters())
    first.state["m"] = np.full(first.shape, 7.0, first.data.dtype)
    opt.step()
    assert np.shares_memory(first.state["m"], buf.states["m"])
    np.testing.assert_allclose(first.state["m"], 0.9 * 7.0 + 0.1 * 0.5, rtol=1e-6)


def test_moving_or_casting_a_parameter_repacks_at_the_next_step():
    model = dn.models.lenet5(seed=0)
    opt = dn.optim.SGD(model.parameters(), lr=0.1)
    (old,) = opt.buffers()
    model.astype(np.float64)
    assert old.broken
    for p in model.parameters():
        assert p.data.dtype == p.grad.dtype == np.float64
    (new,) = opt.buffers()
    assert new is not old and new.dtype == np.float64
    assert all(np.shares_memory(p.data, new.data) for p in model.parameters())


def test_assigning_the_same_shape_and_dtype_copies_into_the_buffer():
    layer = dn.layers.Linear(3, 2, seed=0)
    opt = dn.optim.SGD(layer.parameters(), lr=0.1)
    (buf,) = opt.buffers()
    new = np.arange(6, dtype=np.float32).reshape(2, 3)
    layer.weight.data = new
    np.testing.assert_array_equal(layer.weight.data, new)
    assert np.shares_memory(layer.weight.data, buf.data) and not np.shares_memory(layer.weight.data, new)
    layer.weight.grad = np.ones((2, 3), np.float32)
    assert buf.grad[:6].sum() == 6


@pytest.mark.parametrize("value,match", [
    (np.zeros((2, 3), np.float64), r"Parameter weight: cannot assign shape \(2, 3\) float64 to \.data, which holds "
                                   r"shape \(2, 3\) float32; .*model\.astype"),
    (np.zeros((3, 3), np.float32), r"Parameter weight: cannot assign shape \(3, 3\) float32 to \.data, which holds "
                                   r"shape \(2, 3\) float32"),
])
def test_assigning_another_dtype_or_shape_is_refused_with_the_fix(value, match):
    """Before: the data took the new dtype while the gradient kept float32 (gradients silently
    rounded), and a new shape made dn.save write a file dn.load could not read."""
    layer = dn.layers.Linear(3, 2, seed=0)
    with pytest.raises(ValueError, match=match) as info:
        layer.weight.data = value
    assert "\n" not in str(info.value)
    assert layer.weight.data.dtype == layer.weight.grad.dtype == np.float32 and layer.weight.shape == (2, 3)


def test_assigning_a_gradient_of_another_dtype_is_refused():
    p = Parameter(np.zeros(4, np.float32), "bias")
    with pytest.raises(ValueError, match=r"Parameter bias: cannot assign shape \(4,\) float64 to \.grad"):
        p.grad = np.zeros(4)


def test_in_place_updates_through_the_property_keep_the_view():
    p = Parameter(np.ones(5), "w")
    FlatBuffer([p])
    view = p.data
    p.data -= 0.5
    p.grad += 2.0
    assert p.data is view and (p.data == 0.5).all() and (p.grad == 2.0).all()


def test_a_model_with_assigned_parameters_saves_and_loads(tmp_path):
    model = dn.models.lenet5(seed=0)
    for p in model.parameters():
        p.data = np.full(p.shape, 0.25, np.float32)
    path = dn.save(model, tmp_path / "m.h5")
    loaded = dn.load(path)
    for p in loaded.parameters():
        assert (p.data == 0.25).all() and p.grad.dtype == p.data.dtype
