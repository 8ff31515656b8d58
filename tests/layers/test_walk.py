"""The one layer walk: depth first, parents before children, and every visitor of layers agrees
with it (parameters, buffers, checkpoints' Dropout RNGs, loadability)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import dualnet as dn
from dualnet import layers as L
from dualnet.checkpoint.layer_state import dropout_layers, owned_buffers
from dualnet.layers.walk import random_generators, walk


def _recursive(layer, prefix=""):
    """The definition the walk must meet: each child, then its own subtree, in children() order."""
    for name, child in layer.children():
        yield prefix + name, child
        yield from _recursive(child, f"{prefix}{name}.")


@st.composite
def trees(draw, depth=0):
    kind = draw(st.sampled_from(["linear", "bn", "dropout"] + (["seq", "res"] if depth < 3 else [])))
    if kind == "linear":
        return L.Linear(2, 2, seed=draw(st.integers(0, 9)))
    if kind == "bn":
        return L.BatchNorm1d(2)
    if kind == "dropout":
        return L.Dropout(0.5, seed=draw(st.integers(0, 9)))
    body = dn.Sequential(*[draw(trees(depth + 1)) for _ in range(draw(st.integers(1, 3)))])
    return body if kind == "seq" else L.Residual(body)


@settings(max_examples=15)
@given(trees())
def test_walk_visits_every_layer_once_depth_first_with_parents_before_children(tree):
    model = dn.Sequential(tree, L.Dropout(0.5))
    paths = list(walk(model))
    assert [(p, id(layer)) for p, layer in paths] == [(p, id(layer)) for p, layer in _recursive(model)]
    assert len({id(layer) for _, layer in paths}) == len(paths)
    # every visitor of layers sees the same layers in the same order
    assert [d for d in dropout_layers(model)] == [lay for _, lay in paths if isinstance(lay, L.Dropout)]
    assert [g for _, g in random_generators(model)] == [lay.rng for _, lay in paths if isinstance(lay, L.Dropout)]
    owners = [(name, id(layer)) for name, layer, _ in owned_buffers(model)]
    assert [name for name, _ in owners] == [name for name, _ in model.named_buffers()]
    expected = [f"{p}.{n}" for p, lay in paths for n, _ in lay.own_parameters()]
    assert [name for name, _ in model.named_parameters()] == expected


def test_walk_includes_the_root_under_its_prefix_when_asked():
    model = dn.Sequential(L.Residual(dn.Sequential(L.Linear(2, 2))))
    assert [p for p, _ in walk(model, include_self=True)] == ["", "res1", "res1.body", "res1.body.fc1"]
    assert [p for p, _ in walk(model, "m", include_self=True)][:2] == ["m", "m.res1"]


def test_random_generators_finds_private_generators_of_custom_layers():
    class Noisy(L.Layer):
        def __init__(self):
            super().__init__()
            self._gen = np.random.default_rng(1)

    model = dn.Sequential(L.Residual(dn.Sequential(Noisy())))
    assert [path for path, _ in random_generators(model)] == ["res1.body.layer1._gen"]
