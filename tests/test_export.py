"""ONNX export: onnxruntime computes what dualnet computes, for every zoo model and every layer
on drawn geometries; the file passes the full ONNX check; refusals name the layer and the fix."""

from __future__ import annotations

import importlib.util
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from standins.layers import layer_class, set_state

import dualnet as dn
from dualnet import layers as L
from dualnet.export import ExportError, OnnxMissingError, export_onnx, register_converter

HAVE_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason='needs the onnx extra: pip install "dualnet[onnx]"')
RTOL, ATOL = 1e-4, 1e-5
_count = itertools.count()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


def export_and_load(model, folder, **kwargs):
    """Export to a fresh file, run the full ONNX check on what was written, return an ORT session."""
    import onnx
    import onnxruntime as ort

    path = export_onnx(model, folder / f"m{next(_count)}.onnx", **kwargs)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run_both(model, session, x):
    """(onnxruntime's output, dualnet's eval-mode output) for float32 x."""
    got = session.run(None, {"input": x})[0]
    model.eval()
    dtype = next((p.data.dtype for p in model.parameters()), np.float32)
    return got, np.asarray(model(x.astype(dtype)), dtype=np.float32)


def assert_agree(got, want, classify=True):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    if classify:
        assert np.array_equal(got.argmax(axis=1), want.argmax(axis=1))


# --- the zoo ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zoo(folder):
    if not HAVE_ONNX:
        pytest.skip('needs the onnx extra: pip install "dualnet[onnx]"')
    out = {}
    for name in dn.models.names():
        model = dn.models.get(name, seed=3)
        out[name] = (model, export_and_load(model, folder))
    return out


@needs_onnx
@given(name=st.sampled_from(dn.models.names()), batch=st.integers(1, 6), seed=st.integers(0, 2**31),
       kind=st.sampled_from(["uniform", "normal", "blank"]))
def test_every_zoo_model_gives_dualnets_outputs_in_onnxruntime(zoo, name, batch, seed, kind):
    model, session = zoo[name]
    rng = np.random.default_rng(seed)
    shape = (batch, *model.input_shape)
    x = {"uniform": rng.uniform(0, 1, shape), "normal": rng.normal(0, 2, shape),
         "blank": np.zeros(shape)}[kind].astype(np.float32)
    assert_agree(*run_both(model, session, x))


@needs_onnx
def test_zoo_models_cover_every_registered_builtin_layer_type_but_the_new_ones():
    seen = {type(layer).__name__ for name in dn.models.names() for layer in dn.models.get(name).layers}
    from dualnet.export import CONVERTERS

    assert seen <= set(CONVERTERS)


@needs_onnx
def test_export_declares_a_dynamic_batch_axis_and_records_the_model(folder):
    import onnx

    model = dn.models.get("lenet5")
    path = export_onnx(model, folder / "lenet5.onnx")
    proto = onnx.load(str(path))
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", 1, 28, 28]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["input_shape"]) == [1, 28, 28]
    assert json.loads(meta["dualnet_model"])["name"] == "lenet5"
    assert proto.graph.output[0].name == "output"
    assert sum(int(np.prod(t.dims)) for t in proto.graph.initializer) == 61_706


@needs_onnx
def test_float64_model_exports_float32_weights_that_agree_to_float32_rounding(folder):
    import onnx
    import onnxruntime as ort

    model = dn.models.get("lenet5", dtype=np.float64)
    path = export_onnx(model, folder / "float64.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    proto = onnx.load(str(path))
    assert {t.data_type for t in proto.graph.initializer} == {onnx.TensorProto.FLOAT}
    x = np.random.default_rng(0).uniform(0, 1, (4, 1, 28, 28)).astype(np.float32)
    assert_agree(*run_both(model, session, x))


# --- layers on drawn geometries ----------------------------------------------------------------


@needs_onnx
@given(g=dn.testing.conv_geometries(max_size=12), bias=st.booleans(), seed=st.integers(0, 2**31))
def test_conv2d_with_groups_dilation_padding_and_stride_matches_onnx_conv(folder, g, bias, seed):
    conv = L.Conv2d(**dn.testing.conv_layer_kwargs(g), bias=bias, seed=seed)
    if bias:
        conv.bias.data[:] = np.random.default_rng(seed).normal(size=conv.bias.data.shape)
    model = L.Sequential(conv, input_shape=(g["c"], g["h"], g["w"]))
    x = dn.testing.uniform((g["n"], g["c"], g["h"], g["w"]), seed, np.float32)
    assert_agree(*run_both(model, export_and_load(model, folder), x), classify=False)


@needs_onnx
@given(g=dn.testing.pool_geometries(max_size=12), kind=st.sampled_from(["MaxPool2d", "AvgPool2d"]),
       seed=st.integers(0, 2**31))
def test_padded_pooling_matches_onnx_pooling_with_dualnets_padding_rule(folder, g, kind, seed):
    """Max pooling never picks padding (inputs all negative would expose a zero pad); average
    pooling divides by kh * kw, padding counted as zeros."""
    pool = getattr(L, kind)(g["kernel_size"], g["stride"], g["padding"])
    model = L.Sequential(pool, input_shape=(g["c"], g["h"], g["w"]))
    x = dn.testing.tie_free((g["n"], g["c"], g["h"], g["w"]), seed, np.float32) - 2.0
    assert_agree(*run_both(model, export_and_load(model, folder), x), classify=False)


@needs_onnx
@given(n=st.integers(1, 4), features=st.integers(1, 12), out=st.integers(1, 12), bias=st.booleans(),
       act=st.sampled_from(["ReLU", "Tanh", "Sigmoid", "LeakyReLU"]), slope=st.floats(0.0, 0.5))
def test_linear_and_activations_match_gemm_and_onnx_activations(folder, n, features, out, bias, act, slope):
    activation = layer_class(act)(slope) if act == "LeakyReLU" else getattr(L, act)()
    model = L.Sequential(L.Linear(features, out, bias=bias, seed=n), activation, L.Dropout(0.5),
                         input_shape=(features,))
    x = dn.testing.uniform((n, features), out, np.float32, -3, 3)
    assert_agree(*run_both(model, export_and_load(model, folder), x), classify=False)


def _batchnorm(cls_name, channels, affine, rng):
    bn = layer_class(cls_name)(channels, eps=float(rng.choice([1e-5, 1e-3])), affine=affine)
    set_state(bn, "running_mean", rng.normal(size=channels))
    set_state(bn, "running_var", rng.uniform(0.2, 3.0, channels))
    if affine:
        set_state(bn, "weight", rng.normal(size=channels))
        set_state(bn, "bias", rng.normal(size=channels))
    return bn


@needs_onnx
@given(seed=st.integers(0, 2**31), affine=st.booleans(), shortcut=st.sampled_from(["identity", "conv"]))
def test_residual_batchnorm_and_global_pooling_net_matches_onnxruntime(folder, seed, affine, shortcut):
    """A small ResNet-like net: conv, BatchNorm2d, Residual (nested Sequential body; identity or
    strided 1x1 shortcut), LeakyReLU, GlobalAvgPool2d, Linear, BatchNorm1d, Linear."""
    rng = np.random.default_rng(seed)
    stride = 1 if shortcut == "identity" else 2
    body = L.Sequential(L.Conv2d(4, 4, 3, stride=stride, padding=1, seed=seed),
                        _batchnorm("BatchNorm2d", 4, affine, rng), L.ReLU(),
                        L.Conv2d(4, 4, 3, padding=1, seed=seed + 1))
    short = None if shortcut == "identity" else L.Conv2d(4, 4, 1, stride=2, bias=False, seed=seed + 2)
    model = L.Sequential(
        L.Conv2d(3, 4, 3, padding=1, seed=seed + 3), _batchnorm("BatchNorm2d", 4, affine, rng), L.ReLU(),
        layer_class("Residual")(body, short), layer_class("LeakyReLU")(0.1),
        layer_class("GlobalAvgPool2d")(), L.Linear(4, 6, seed=seed + 4), _batchnorm("BatchNorm1d", 6, affine, rng),
        L.Linear(6, 5, seed=seed + 5), input_shape=(3, 8, 8))
    x = rng.normal(size=(3, 3, 8, 8)).astype(np.float32)
    assert_agree(*run_both(model, export_and_load(model, folder), x))


# --- normalization, custom layers, refusals ------------------------------------------------------


@needs_onnx
def test_recorded_normalization_is_folded_so_the_graph_takes_raw_inputs(folder):
    import onnx

    model = dn.models.get("lenet5-classic")
    model.metadata = {"normalization": {"mean": [0.1307], "std": [0.3081]}}
    session = export_and_load(model, folder)
    raw = np.random.default_rng(1).uniform(0, 1, (5, 1, 28, 28)).astype(np.float32)
    got = session.run(None, {"input": raw})[0]
    model.eval()
    assert_agree(got, model(((raw - 0.1307) / 0.3081).astype(np.float32)))
    kept = onnx.load(str(export_onnx(model, folder / "unfolded.onnx", fold_normalization=False)))
    assert not {"Sub", "Div"} & {n.op_type for n in kept.graph.node}
    meta = json.loads({p.key: p.value for p in kept.metadata_props}["normalization"])
    assert meta == {"mean": [0.1307], "std": [0.3081], "folded": False}


@needs_onnx
@pytest.mark.parametrize("norm, problem", [({"mean": [0.1, 0.2]}, "must be"),
                                           ({"mean": [0.1, 0.2], "std": [1, 1]}, "1 or 1 finite"),
                                           ({"mean": [0.0], "std": [0.0]}, "std must be > 0")])
def test_bad_normalization_is_refused_naming_the_problem(folder, norm, problem):
    with pytest.raises(ExportError, match=problem):
        export_onnx(dn.models.get("mlp"), folder / "bad.onnx", normalization=norm)


class Scale(L.Layer):
    """A user's layer: y = x * factor (per feature)."""

    def __init__(self, factor):
        super().__init__()
        self.factor = np.asarray(factor, np.float32)

    def forward(self, x):
        return x * self.factor


@needs_onnx
def test_a_registered_converter_exports_a_custom_layer(folder):
    from dualnet.export import CONVERTERS

    @register_converter(Scale)
    def _(layer, g, x, shape):
        return g.op("Mul", [x, g.weight(layer.factor, "factor")])

    try:
        model = L.Sequential(L.Linear(3, 4, seed=0), Scale([1.0, -2.0, 0.5, 3.0]), input_shape=(3,))
        x = dn.testing.uniform((2, 3), 0, np.float32)
        assert_agree(*run_both(model, export_and_load(model, folder), x), classify=False)
    finally:
        CONVERTERS.pop("Scale")


@needs_onnx
def test_a_layer_without_converter_is_refused_in_one_line_naming_it_and_its_type(folder):
    model = L.Sequential(L.Sequential(L.Linear(3, 3), Scale(1.0)), input_shape=(3,))
    with pytest.raises(ExportError) as info:
        export_onnx(model, folder / "x.onnx")
    message = str(info.value)
    assert "layer seq1.layer1 (Scale)" in message and "register_converter(Scale)" in message
    assert "\n" not in message and not (folder / "x.onnx").exists()


@needs_onnx
@pytest.mark.parametrize("kwargs, problem", [(dict(opset=12), "opset must be"), (dict(input_shape=(0, 3)), "positive"),
                                             (dict(input_shape=(2, 28, 28)), "does not accept")])
def test_bad_export_arguments_are_refused_naming_the_argument(folder, kwargs, problem):
    with pytest.raises(ExportError, match=problem):
        export_onnx(dn.models.get("lenet5"), folder / "y.onnx", **kwargs)


@needs_onnx
def test_a_model_without_input_shape_needs_the_argument(folder):
    model = L.Sequential(L.Linear(3, 2))
    with pytest.raises(ExportError, match="input_shape=.C, H, W."):
        export_onnx(model, folder / "z.onnx")
    session = export_and_load(model, folder, input_shape=(3,))
    assert session.run(None, {"input": np.ones((7, 3), np.float32)})[0].shape == (7, 2)


def test_missing_onnx_gives_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(OnnxMissingError, match=r'pip install "dualnet\[onnx\]"'):
        dn.export_onnx(dn.models.get("mlp"), tmp_path / "m.onnx")


def test_importing_dualnet_and_its_export_package_does_not_import_onnx():
    code = "import sys, dualnet as dn; dn.export.CONVERTERS; dn.from_dlpack; print('onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
