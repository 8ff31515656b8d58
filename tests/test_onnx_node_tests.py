"""The ONNX backend node tests (onnx.backend.test, the cases behind `load_model_tests(kind="node")`)
of every op dualnet has a layer for, run as dualnet layers on ref, cpu and emu with each case's own
tolerances. A case dualnet cannot express is listed in OUT_OF_SCOPE with the reason; the test holds
that list to exactly the cases the translation refuses, so nothing is skipped silently and a case
that becomes expressible (or stops being) fails until the list says so.

Only the op modules are imported (not the whole suite of ~1,900 cases): the same cases, built the
same way, in a fraction of the time.
"""

from __future__ import annotations

import importlib
import math
import warnings
from typing import Any

import numpy as np
import pytest

import dualnet as dn
from dualnet import layers as L

onnx = pytest.importorskip("onnx", reason='needs the onnx extra: pip install "dualnet[onnx]"')
from onnx import helper  # noqa: E402

#: the ONNX op -> the onnx.backend.test.case.node module holding its cases
OP_MODULES = {"Conv": "conv", "ConvTranspose": "convtranspose", "MaxPool": "maxpool", "AveragePool": "averagepool",
              "GlobalAveragePool": "globalaveragepool", "Relu": "relu", "LeakyRelu": "leakyrelu",
              "Sigmoid": "sigmoid", "Tanh": "tanh", "Softmax": "softmax", "LogSoftmax": "logsoftmax", "Pad": "pad",
              "Resize": "resize", "Gemm": "gemm", "Flatten": "flatten", "BatchNormalization": "batch_normalization",
              "Dropout": "dropout"}

_3D, _1D = "not 2-D: dualnet's spatial layers take (N, C, H, W)", "not 2-D: dualnet's spatial layers take (N, C, H, W)"
_CUBIC = "cubic interpolation: Upsample has nearest and bilinear (PyTorch's modes)"
_ROUND = "nearest with rounding other than floor of asymmetric coordinates: Upsample's nearest is PyTorch's"
_AA = "antialiasing: not part of PyTorch's Upsample"
_CROP = "tf_crop_and_resize: a region of interest, no PyTorch Upsample counterpart"
_SYM = "half_pixel_symmetric coordinates: not PyTorch's"
_ASYM_POOL = "asymmetric pooling padding: dualnet's pooling pads both sides equally (PyTorch's)"
_INT = "an integer input: dualnet's layers compute in float32 / float64"
_ASPECT = "keep_aspect_ratio_policy other than stretch: Upsample stretches to its size"
_ONE_PIXEL = ("bilinear onto a single output pixel: ONNX samples input pixel 0 there, PyTorch's Upsample the "
              "centre of the input")
_ALIGN_SCALE = ("align_corners with a scale that does not give a whole output size: ONNX divides by the unrounded "
                "size, PyTorch by the output size")
_BIG_PAD = "pooling padding over half the kernel: PyTorch's pooling layers refuse it"
_FLAT = "Flatten at an axis other than 1: dualnet's Flatten keeps the batch axis only"
_DROP_MASK = "a dropout mask output: dualnet's Dropout returns the values only"
_DROP_TRAIN = "training-mode dropout: the mask comes from ONNX's random generator, not reproducible"
_GEMM = "Gemm other than x W^T + b with a per-output bias: Linear's affine map (alpha, beta, transA, broadcasts)"

OUT_OF_SCOPE: dict[str, str] = {
    "test_averagepool_1d_default": _1D, "test_maxpool_1d_default": _1D, "test_convtranspose_1d": _1D,
    "test_averagepool_3d_default": _3D, "test_averagepool_3d_dilations_small": _3D,
    **{f"test_averagepool_3d_dilations_large_count_include_pad_is_{a}_ceil_mode_is_{b}": _3D
       for a in (0, 1) for b in ("False", "True")},
    "test_maxpool_3d_default": _3D, "test_maxpool_3d_dilations": _3D, "test_maxpool_3d_dilations_use_ref_impl": _3D,
    "test_maxpool_3d_dilations_use_ref_impl_large": _3D, "test_convtranspose_3d": _3D,
    "test_averagepool_2d_dilations": "a dilated average pool: PyTorch's AvgPool2d has no dilation",
    "test_averagepool_2d_same_lower": _ASYM_POOL, "test_averagepool_2d_same_upper": _ASYM_POOL,
    "test_maxpool_2d_same_lower": _ASYM_POOL,
    "test_maxpool_2d_same_upper": _ASYM_POOL,
    "test_maxpool_2d_uint8": _INT,
    "test_maxpool_with_argmax_2d_precomputed_pads": "the Indices output of MaxPool (no return_indices in dualnet)",
    "test_maxpool_with_argmax_2d_precomputed_strides": "the Indices output of MaxPool (no return_indices in dualnet)",
    "test_convtranspose_autopad_same": "asymmetric transposed-convolution padding: ConvTranspose2d pads both sides "
                                       "equally (PyTorch's)",
    "test_wrap_pad": "wrap (circular) padding: dualnet has zero, constant, reflection and replication padding",
    "test_constant_pad_axes": None, "test_constant_pad_negative_axes": None,
    "test_edge_pad": _INT, "test_reflect_pad": _INT,
    **{f"test_{s}_pads{t}": _BIG_PAD for s in ("averagepool_2d", "maxpool_2d") for t in ("", "_count_include_pad")
       if not (s == "maxpool_2d" and t)},
    **{f"test_resize_{s}": _CUBIC for s in (
        "downsample_scales_cubic", "downsample_scales_cubic_A_n0p5_exclude_outside",
        "downsample_scales_cubic_align_corners", "downsample_scales_cubic_antialias", "downsample_sizes_cubic",
        "downsample_sizes_cubic_antialias", "upsample_scales_cubic", "upsample_scales_cubic_A_n0p5_exclude_outside",
        "upsample_scales_cubic_align_corners", "upsample_scales_cubic_asymmetric", "upsample_sizes_cubic")},
    "test_resize_downsample_scales_linear": _ONE_PIXEL,
    "test_resize_downsample_sizes_linear_pytorch_half_pixel": _ONE_PIXEL,
    "test_resize_downsample_scales_linear_align_corners": _ALIGN_SCALE,
    "test_resize_downsample_scales_linear_antialias": _AA, "test_resize_downsample_sizes_linear_antialias": _AA,
    "test_resize_downsample_scales_linear_half_pixel_symmetric": _SYM,
    "test_resize_upsample_scales_linear_half_pixel_symmetric": _SYM,
    **{f"test_resize_tf_crop_and_resize{s}": _CROP for s in ("", "_axes_2_3", "_axes_3_2", "_extrapolation_value")},
    **{f"test_resize_{s}": _ROUND for s in (
        "downsample_scales_nearest", "downsample_sizes_nearest", "upsample_scales_nearest",
        "upsample_scales_nearest_axes_2_3", "upsample_scales_nearest_axes_3_2", "upsample_sizes_nearest",
        "upsample_sizes_nearest_axes_2_3", "upsample_sizes_nearest_axes_3_2", "upsample_sizes_nearest_ceil_half_pixel",
        "upsample_sizes_nearest_floor_align_corners", "upsample_sizes_nearest_round_prefer_ceil_asymmetric")},
    **{f"test_resize_{s}_sizes_nearest_not_{t}": _ASPECT for s in ("downsample", "upsample")
       for t in ("larger", "smaller")},
    **{f"test_flatten_{s}": _FLAT for s in ("axis0", "axis2", "axis3", "negative_axis1", "negative_axis2",
                                            "negative_axis3", "negative_axis4")},
    "test_dropout_default_mask": _DROP_MASK, "test_dropout_default_mask_ratio": _DROP_MASK,
    **{f"test_training_dropout{s}": _DROP_TRAIN for s in ("", "_default", "_default_mask", "_mask", "_zero_ratio",
                                                          "_zero_ratio_mask")},
    "test_batchnorm_epsilon_training_mode": "training-mode running variance: ONNX updates it with the biased batch "
                                            "variance, dualnet (as PyTorch) with the unbiased one",
    "test_batchnorm_example_training_mode": "training-mode running variance: ONNX updates it with the biased batch "
                                            "variance, dualnet (as PyTorch) with the unbiased one",
    **{f"test_gemm_{s}": _GEMM for s in ("all_attributes", "alpha", "beta", "default_matrix_bias",
                                         "default_scalar_bias", "default_single_elem_vector_bias", "transposeA")},
}
# pads on the H and W axes given through `axes`: expressible, so they run (None: not out of scope)
OUT_OF_SCOPE = {k: v for k, v in OUT_OF_SCOPE.items() if v is not None}


class OutOfScope(Exception):
    """A case dualnet cannot express; the message is the reason."""


def _cases() -> list[Any]:
    """The single-node cases of OP_MODULES' ops (multi-node "expanded" function bodies excluded)."""
    import onnx.backend.test.case.node as node_cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module in OP_MODULES.values():
            importlib.import_module(f"onnx.backend.test.case.node.{module}")
    return sorted((t for t in node_cases._NodeTestCases
                   if len(t.model.graph.node) == 1 and t.model.graph.node[0].op_type in OP_MODULES),
                  key=lambda t: t.name)


CASES = _cases()


def _attrs(node: Any) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any, default: str) -> str:
    return value.decode() if isinstance(value, bytes) else (value or default)


def _same_pads(size: int, k: int, s: int, d: int, mode: str) -> tuple[int, int]:
    """(begin, end) padding of auto_pad SAME_UPPER / SAME_LOWER on one axis."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    small, big = total // 2, total - total // 2
    return (small, big) if mode == "SAME_UPPER" else (big, small)


def _window(node: Any, x: Any, k: tuple[int, ...]) -> tuple[list[int], list[int], list[int]]:
    """strides, dilations and [top, left, bottom, right] pads of a 2-D Conv / pool node on x."""
    a = _attrs(node)
    if x.ndim != 4:
        raise OutOfScope(_3D)
    strides, dilations = list(a.get("strides", [1, 1])), list(a.get("dilations", [1, 1]))
    pads = list(a.get("pads", [0, 0, 0, 0]))
    auto = _text(a.get("auto_pad"), "NOTSET")
    if auto == "VALID":
        pads = [0, 0, 0, 0]
    elif auto.startswith("SAME"):
        (t, b), (lft, r) = (_same_pads(x.shape[2 + i], k[i], strides[i], dilations[i], auto) for i in range(2))
        pads = [t, lft, b, r]
    return strides, dilations, pads


def _assign(layer: Any, **arrays: Any) -> Any:
    for name, value in arrays.items():
        getattr(layer, name).data = np.ascontiguousarray(value, dtype=np.float32)
    return layer


def translate(node: Any, inputs: list[np.ndarray], n_outputs: int) -> tuple[Any, np.ndarray]:
    """(dualnet layer computing the node's first output from inputs[0], that input); OutOfScope otherwise."""
    op, a = node.op_type, _attrs(node)
    x = inputs[0]
    if op == "Pad" and _text(a.get("mode"), "constant") == "wrap":
        raise OutOfScope(OUT_OF_SCOPE["test_wrap_pad"])
    if x.dtype != np.float32:
        raise OutOfScope(_INT)
    if n_outputs > 1 and op not in ("BatchNormalization", "Dropout"):
        raise OutOfScope("the Indices output of MaxPool (no return_indices in dualnet)")
    if op == "Conv":
        w = inputs[1]
        strides, dilations, (t, lft, b, r) = _window(node, x, w.shape[2:])
        layer = L.Conv2d(x.shape[1], w.shape[0], w.shape[2:], strides, (lft, r, t, b), dilations,
                         int(a.get("group", 1)), bias=len(inputs) > 2)
        return _assign(layer, weight=w, **({"bias": inputs[2]} if len(inputs) > 2 else {})), x
    if op == "ConvTranspose":
        return _conv_transpose(node, a, inputs), x
    if op in ("MaxPool", "AveragePool"):
        k = tuple(a["kernel_shape"])
        strides, dilations, (t, lft, b, r) = _window(node, x, k)
        if (t, lft) != (b, r):
            raise OutOfScope(_ASYM_POOL)
        if t > k[0] // 2 or lft > k[1] // 2:
            raise OutOfScope(_BIG_PAD)
        ceil = bool(a.get("ceil_mode", 0))
        if op == "MaxPool":
            return L.MaxPool2d(k, strides, (t, lft), dilation=dilations, ceil_mode=ceil), x
        if dilations != [1, 1]:
            raise OutOfScope("a dilated average pool: PyTorch's AvgPool2d has no dilation")
        return L.AvgPool2d(k, strides, (t, lft), ceil, bool(a.get("count_include_pad", 0))), x
    if op == "GlobalAveragePool":
        return dn.Sequential(L.GlobalAvgPool2d()), x
    simple = {"Relu": L.ReLU, "Sigmoid": L.Sigmoid, "Tanh": L.Tanh}
    if op in simple:
        return simple[op](), x
    if op == "LeakyRelu":
        return L.LeakyReLU(float(a.get("alpha", 0.01))), x
    if op in ("Softmax", "LogSoftmax"):
        return (L.Softmax if op == "Softmax" else L.LogSoftmax)(int(a.get("axis", -1))), x
    if op == "Pad":
        return _pad(a, inputs), x
    if op == "Resize":
        return _resize(a, inputs), x
    if op == "Gemm":
        return _gemm(a, inputs), x
    if op == "Flatten":
        if int(a.get("axis", 1)) != 1:
            raise OutOfScope(_FLAT)
        return L.Flatten(), x
    if op == "BatchNormalization":
        if int(a.get("training_mode", 0)):
            raise OutOfScope(OUT_OF_SCOPE["test_batchnorm_example_training_mode"])
        scale, bias, mean, var = inputs[1:5]
        layer = (L.BatchNorm2d if x.ndim == 4 else L.BatchNorm1d)(x.shape[1], eps=float(a.get("epsilon", 1e-5)))
        layer.running_mean[...], layer.running_var[...] = mean, var
        return _assign(layer, weight=scale, bias=bias).eval(), x
    if op == "Dropout":
        if len(inputs) > 2 and bool(inputs[2]):
            raise OutOfScope(_DROP_TRAIN)
        if n_outputs > 1:
            raise OutOfScope(_DROP_MASK)
        return L.Dropout(float(inputs[1]) if len(inputs) > 1 else 0.5).eval(), x
    raise AssertionError(f"no translation for {op}")  # pragma: no cover - OP_MODULES lists only these


def _conv_transpose(node: Any, a: dict, inputs: list[np.ndarray]) -> Any:
    x, w = inputs[0], inputs[1]
    if x.ndim != 4:
        raise OutOfScope(_3D)
    k = w.shape[2:]
    s, d = list(a.get("strides", [1, 1])), list(a.get("dilations", [1, 1]))
    op = list(a.get("output_padding", [0, 0]))
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if "output_shape" in a:  # ONNX's rule: the total padding that gives output_shape, split SAME_UPPER-style
        total = [s[i] * (x.shape[2 + i] - 1) + op[i] + (k[i] - 1) * d[i] + 1 - a["output_shape"][i] for i in range(2)]
        op = [op[i] + max(0, -total[i]) for i in range(2)]  # a larger output_shape: extra trailing rows
        total = [max(0, t) for t in total]
        pads = [total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2]
    if _text(a.get("auto_pad"), "NOTSET") != "NOTSET" or pads[:2] != pads[2:]:
        if pads[:2] != pads[2:] and all(pads[i] - pads[i + 2] in (0, 1) for i in range(2)):
            # a begin pad one larger than the end pad is a symmetric pad plus one output row
            op = [op[i] + pads[i] - pads[i + 2] for i in range(2)]
            pads = pads[:2] * 2
        else:
            raise OutOfScope(OUT_OF_SCOPE["test_convtranspose_autopad_same"])
    g = int(a.get("group", 1))
    layer = L.ConvTranspose2d(x.shape[1], w.shape[1] * g, k, s, pads[:2], op, g, len(inputs) > 2, d)
    return _assign(layer, weight=w, **({"bias": inputs[2]} if len(inputs) > 2 else {}))


def _pad(a: dict, inputs: list[np.ndarray]) -> Any:
    x, pads = inputs[0], [int(p) for p in inputs[1]]
    value = float(inputs[2]) if len(inputs) > 2 and inputs[2] is not None and inputs[2].size else 0.0
    axes = [int(v) % x.ndim for v in inputs[3]] if len(inputs) > 3 else list(range(x.ndim))
    before, after = dict(zip(axes, pads[:len(axes)])), dict(zip(axes, pads[len(axes):]))
    if any(before.get(i, 0) or after.get(i, 0) for i in (0, 1)) or x.ndim != 4:
        raise OutOfScope("padding of the batch or channel axis: dualnet's padding layers pad H and W")
    four = (before.get(3, 0), after.get(3, 0), before.get(2, 0), after.get(2, 0))
    mode = _text(a.get("mode"), "constant")
    if mode == "wrap":
        raise OutOfScope(OUT_OF_SCOPE["test_wrap_pad"])
    return {"constant": lambda: L.ConstantPad2d(four, value), "reflect": lambda: L.ReflectionPad2d(four),
            "edge": lambda: L.ReplicationPad2d(four)}[mode]()


def _resize(a: dict, inputs: list[np.ndarray]) -> Any:
    x = inputs[0]
    mode = _text(a.get("mode"), "nearest")
    ctm = _text(a.get("coordinate_transformation_mode"), "half_pixel")
    if mode == "cubic":
        raise OutOfScope(_CUBIC)
    if int(a.get("antialias", 0)):
        raise OutOfScope(_AA)
    if ctm == "tf_crop_and_resize":
        raise OutOfScope(_CROP)
    if ctm == "half_pixel_symmetric":
        raise OutOfScope(_SYM)
    if _text(a.get("keep_aspect_ratio_policy"), "stretch") != "stretch":
        raise OutOfScope(_ASPECT)
    axes = [int(v) % x.ndim for v in a.get("axes", range(x.ndim))]
    scales = inputs[2] if len(inputs) > 2 and inputs[2] is not None and inputs[2].size else None
    sizes = inputs[3] if len(inputs) > 3 and inputs[3] is not None and inputs[3].size else None
    full_scale = dict(zip(axes, scales)) if scales is not None else {}
    full_size = dict(zip(axes, sizes)) if sizes is not None else {}
    if any(full_scale.get(i, 1.0) != 1.0 or full_size.get(i, x.shape[i]) != x.shape[i] for i in (0, 1)):
        raise OutOfScope("resizing the batch or channel axis: Upsample resizes H and W")
    if mode == "nearest" and (ctm != "asymmetric" or _text(a.get("nearest_mode"), "round_prefer_floor") != "floor"):
        raise OutOfScope(_ROUND)
    if mode == "linear" and ctm not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
        raise OutOfScope(f"linear resizing with {ctm} coordinates: Upsample's bilinear is PyTorch's")
    kwargs: dict[str, Any] = {"mode": "nearest" if mode == "nearest" else "bilinear"}
    if mode == "linear":
        kwargs["align_corners"] = ctm == "align_corners"
    if scales is not None:
        hw = (float(full_scale.get(2, 1.0)), float(full_scale.get(3, 1.0)))
        out = [math.floor(x.shape[2 + i] * hw[i]) for i in range(2)]
        if ctm == "align_corners" and any(x.shape[2 + i] * hw[i] != out[i] for i in range(2)):
            raise OutOfScope(_ALIGN_SCALE)
        layer = L.Upsample(scale_factor=hw, **kwargs)
    else:
        out = [int(full_size.get(2, x.shape[2])), int(full_size.get(3, x.shape[3]))]
        layer = L.Upsample(size=tuple(out), **kwargs)
    if mode == "linear" and ctm != "align_corners" and min(out) == 1:
        raise OutOfScope(_ONE_PIXEL)
    return layer


def _gemm(a: dict, inputs: list[np.ndarray]) -> Any:
    b = inputs[1]
    c = inputs[2] if len(inputs) > 2 else None
    if int(a.get("transA", 0)) or float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
        raise OutOfScope(_GEMM)
    w = b.T if not int(a.get("transB", 0)) else b
    if c is not None and c.shape not in ((w.shape[0],), (1, w.shape[0])):
        raise OutOfScope(_GEMM)
    layer = L.Linear(w.shape[1], w.shape[0], bias=c is not None)
    return _assign(layer, weight=w, **({"bias": c.reshape(-1)} if c is not None else {}))


def _run(case: Any) -> tuple[Any, np.ndarray, list[np.ndarray]]:
    inputs, outputs = case.data_sets[0]
    node = case.model.graph.node[0]
    # the data holds the graph's inputs; a skipped optional node input ("") is None
    by_name = dict(zip((i.name for i in case.model.graph.input), inputs))
    layer, x = translate(node, [by_name.get(name) if name else None for name in node.input], len(node.output))
    return layer, x, list(outputs)


def test_out_of_scope_list_is_exactly_what_dualnet_cannot_express():
    assert len(CASES) > 140, "the op modules gave fewer cases than expected: the collection is broken"
    refused = {}
    for case in CASES:
        try:
            _run(case)
        except OutOfScope as why:
            refused[case.name] = str(why)
    assert refused == OUT_OF_SCOPE


@pytest.mark.parametrize("dev", ["ref", "cpu", "emu"])
@pytest.mark.parametrize("case", [c for c in CASES if c.name not in OUT_OF_SCOPE], ids=lambda c: c.name[5:])
def test_onnx_node_case_passes_within_its_own_tolerance(dev, case):
    layer, x, outputs = _run(case)
    with dn.device(dev):
        layer.to(dev)
        with dn.no_grad():
            got = dn.to_numpy(layer(dn.to_device(x, dev)))
    want = outputs[0]
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=case.rtol, atol=max(case.atol, 1e-6))
