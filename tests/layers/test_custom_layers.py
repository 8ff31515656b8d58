"""The custom-layer protocol: parameters found without a declaration (or refused at construction),
gradient-checked, trained, registered, saved and loaded; README's example run verbatim."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import dualnet as dn
from dualnet import layers as L
from dualnet.errors import GradcheckError

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- example: custom-layer -->\n```python\n"


# each test registers its own classes; the layer registry is as before afterwards (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("restored_layer_registry")


def _param(n: int, start: float = 1.0) -> L.Parameter:
    return L.Parameter(np.linspace(start, start + 1, n).astype(np.float32), "p")


class Gain(L.Layer):
    """y = x * gain per feature (x: (N, features)), its Parameter held as `where` says."""

    def __init__(self, features: int, where: str = "attribute"):
        super().__init__()
        self.features, self.where = features, where
        p = _param(features)
        if where == "attribute":
            self.gain = p
        elif where == "list":
            self.gains = [p]
        elif where == "dict":
            self.gains = {"main": p}
        elif where == "private":
            self._gain = p
        elif where == "nested-list":
            self.gains = [[p]]
        elif where == "set":
            self.gains = {p}
        elif where == "int-key":
            self.gains = {0: p}
        elif where == "private-layer":  # a sub-layer parameters() never reaches
            self._inner = L.Linear(features, features)
        self._p = p if where in ("attribute", "list", "dict") else None  # a second reference is fine

    def config(self) -> dict:
        return {"features": self.features, "where": self.where}

    def forward(self, x):
        self._cache = x
        return x * self._p.data

    def backward(self, dy, need_input_grad=True):
        x = self._need_cache()
        self._p.grad += (dy * x).sum(axis=0)
        return dy * self._p.data if need_input_grad else None


@pytest.mark.parametrize("where,name", [("attribute", "gain"), ("list", "gains.0"), ("dict", "gains.main")])
def test_a_parameter_in_an_attribute_list_or_dict_is_found_checked_and_trained(where, name):
    layer = Gain(3, where)
    assert [n for n, _ in layer.named_parameters()] == [name]
    report = dn.gradcheck(layer, np.random.default_rng(0).random((4, 3)))
    assert name in report.worst
    model = dn.Sequential(L.Flatten(), L.Linear(4, 3, seed=1), Gain(3, where), L.Linear(3, 2, seed=2),
                          input_shape=(1, 2, 2))
    before = dn.to_numpy(model["layer1"]._p.data).copy()
    gen = np.random.default_rng(1)
    data = dn.data.Dataset(gen.random((32, 1, 2, 2)).astype(np.float32), gen.integers(0, 2, 32))
    dn.fit(model, data, epochs=1, batch_size=8, optimizer=dn.optim.SGD(model.parameters(), lr=0.5))
    assert not np.array_equal(before, dn.to_numpy(model["layer1"]._p.data))


@pytest.mark.parametrize("where,path", [("private", "_gain"), ("nested-list", "gains.0.0"), ("set", "gains.0"),
                                        ("int-key", "gains.0"), ("private-layer", "_inner.weight")])
def test_a_parameter_parameters_cannot_find_is_refused_at_construction_naming_it(where, path):
    with pytest.raises(ValueError, match=rf"Gain: attribute {path} holds Parameter\((p|weight), shape=\(3,.*"
                                         "parameters\\(\\) does not find"):
        Gain(3, where)


def test_a_wrong_gradient_of_a_custom_parameter_is_caught_by_gradcheck():
    class Doubled(Gain):
        def backward(self, dy, need_input_grad=True):
            dx = super().backward(dy, need_input_grad)
            self._p.grad *= 2
            return dx

    with pytest.raises(GradcheckError, match="gain"):
        dn.gradcheck(Doubled(3), np.random.default_rng(0).random((4, 3)))


def test_a_registered_custom_layer_saves_and_loads_with_its_parameter(tmp_path):
    model = dn.Sequential(L.Flatten(), Gain(4, "dict"), input_shape=(1, 2, 2))
    with pytest.raises(dn.CheckpointError, match=r"layer layer1 is a .*Gain, which is not registered.*"
                                                 r"dn\.layers\.register\(Gain\)"):
        dn.save(model, tmp_path / "g.h5")
    assert list(tmp_path.iterdir()) == []
    L.register(Gain)
    model["layer1"].gains["main"].data = np.arange(4, dtype=np.float32)
    loaded = dn.load(dn.save(model, tmp_path / "g.h5"))
    assert type(loaded["layer1"]) is Gain
    np.testing.assert_array_equal(loaded["layer1"].gains["main"].data, np.arange(4))


def test_registering_again_replaces_a_redefinition_but_not_another_class():
    first = L.register(type("Twin", (Gain,), {"__module__": "user.module"}))
    again = L.register(type("Twin", (Gain,), {"__module__": "user.module"}))  # a cell run twice
    assert L.LAYER_TYPES["Twin"] is again is not first
    with pytest.raises(ValueError, match="a different layer class is already registered as 'Twin'"):
        L.register(type("Twin", (Gain,), {"__module__": "other.module"}))
    with pytest.raises(ValueError, match="already registered as 'ReLU'"):  # dualnet's own never
        L.register(type("ReLU", (L.ReLU,), {"__module__": "dualnet.layers.elementwise", "__qualname__": "ReLU"}))
    with pytest.raises(TypeError, match="not a subclass of dualnet.layers.Layer"):
        L.register(int)


def test_readme_custom_layer_example_runs_verbatim(tmp_path, monkeypatch, capsys):
    text = README.read_text()
    assert text.count(MARKER) == 1, "README.md must hold exactly one custom-layer example block"
    code = text.split(MARKER, 1)[1].split("\n```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)
    assert "gradcheck ScaledTanh: passed" in capsys.readouterr().out
    cls, model, loaded = namespace["ScaledTanh"], namespace["model"], namespace["loaded"]
    assert L.LAYER_TYPES["ScaledTanh"] is cls and (tmp_path / "scaled_tanh.h5").exists()
    layer = model["stanh1"]
    assert not np.array_equal(dn.to_numpy(layer.scale.data), np.ones(8))  # trained
    assert [n for n, _ in layer.named_buffers()] == ["mean_tanh"] and np.abs(layer.mean_tanh).max() > 0
    for (n, a), (m, b) in zip(model.named_parameters(), loaded.named_parameters(), strict=True):
        assert n == m and dn.to_numpy(a.data).tobytes() == dn.to_numpy(b.data).tobytes()
    assert dn.to_numpy(loaded["stanh1"].mean_tanh).tobytes() == dn.to_numpy(layer.mean_tanh).tobytes()
