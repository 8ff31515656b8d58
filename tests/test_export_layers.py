"""ONNX export of the real-model layers and options (tests/test_export.py covers the rest): Conv pads
and auto_pad, pooling ceil_mode / count_include_pad / dilations, ConvTranspose, Resize (Upsample),
Pad and Softmax / LogSoftmax; onnxruntime computes what dualnet computes, at the default and the
oldest supported opset."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_export import assert_agree, export_and_load, run_both

import dualnet as dn
from dualnet import layers as L
from dualnet.export import MIN_OPSET
from dualnet.testing import uniform

HAVE_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))
pytestmark = pytest.mark.skipif(not HAVE_ONNX, reason='needs the onnx extra: pip install "dualnet[onnx]"')


def _layers():
    """Every new layer and option, each a function of the input channels giving (layer, channels out)."""
    return st.sampled_from([
        lambda c: (L.Conv2d(c, 3, (2, 3), padding="same", dilation=(2, 1)), 3),
        lambda c: (L.Conv2d(c, 2, 3, stride=2, padding=(0, 2, 1, 0)), 2),
        lambda c: (L.Conv2d(c, 2, 1, padding="valid"), 2),
        lambda c: (L.MaxPool2d(3, 2, 1, dilation=(1, 2), ceil_mode=True), c),
        lambda c: (L.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), c),
        lambda c: (L.AvgPool2d(2, 3, 1, ceil_mode=True), c),
        lambda c: (L.ConvTranspose2d(c, 2, 3, stride=2, padding=1, output_padding=1), 2),
        lambda c: (L.ConvTranspose2d(c, c, (2, 3), stride=(1, 2), dilation=(2, 1), groups=c), c),
        lambda c: (L.Upsample(scale_factor=2), c),
        lambda c: (L.Upsample(size=(9, 5), mode="bilinear"), c),
        lambda c: (L.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True), c),
        lambda c: (L.ZeroPad2d((1, 0, 2, -1)), c),
        lambda c: (L.ConstantPad2d(2, 0.25), c),
        lambda c: (L.ReflectionPad2d((2, 1, 0, 3)), c),
        lambda c: (L.ReplicationPad2d(2), c),
        lambda c: (L.Softmax(1), c),
        lambda c: (L.LogSoftmax(-1), c),
    ])


@settings(max_examples=12)
@given(st.lists(_layers(), min_size=1, max_size=3), st.sampled_from([None, MIN_OPSET]), st.integers(0, 2**16))
def test_every_new_layer_exports_and_onnxruntime_agrees(tmp_path_factory, makers, opset, seed):
    c, layers = 2, []
    for make in makers:
        layer, c = make(c)
        layers.append(layer)
    model = dn.Sequential(*layers, input_shape=(2, 7, 8))
    session = export_and_load(model, tmp_path_factory.mktemp("layers"), **({"opset": opset} if opset else {}))
    assert_agree(*run_both(model, session, uniform((3, 2, 7, 8), seed, np.float32)), classify=False)


def test_same_padding_exports_as_auto_pad_and_asymmetric_padding_as_pads(tmp_path):
    import onnx

    model = dn.Sequential(L.Conv2d(1, 1, 4, padding="same"), L.Conv2d(1, 1, 3, padding=(0, 2, 1, 0)),
                          input_shape=(1, 6, 6))
    nodes = onnx.load(str(dn.export_onnx(model, tmp_path / "m.onnx"))).graph.node
    attrs = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in nodes if n.op_type == "Conv"]
    assert attrs[0]["auto_pad"] == b"SAME_UPPER" and "pads" not in attrs[0]
    assert attrs[1]["pads"] == [1, 0, 0, 2]  # [top, left, bottom, right]
