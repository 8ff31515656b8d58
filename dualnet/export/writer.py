"""export_onnx: a dualnet model as an ONNX file (float32 inference graph, dynamic batch axis N)."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import numpy as np

from ..data.normalize import check_normalization
from ..errors import DataError, DualnetError, whole_number
from ..layers.base import Layer
from .registry import ExportError, convert

DEFAULT_OPSET = 17
#: Gemm, Relu, Sigmoid, Tanh, Flatten: every node dualnet writes exists in this form since opset 13
MIN_OPSET = 13
INSTALL_HINT = 'pip install "dualnet[onnx]"'


class OnnxMissingError(DualnetError, ImportError):
    """The onnx (or onnxruntime) package is not installed."""


def require(package: str) -> Any:
    """Import `package` (onnx, onnxruntime) or raise a one-line error saying how to install it (or,
    for one that fails on import, naming it and how to reinstall it)."""
    from ..optional import load

    return load(package, f"ONNX export needs the {package} package: {INSTALL_HINT}",
                'pip install --force-reinstall "dualnet[onnx]"', OnnxMissingError)


def _version() -> str:
    """The installed dualnet's version (read from its metadata: importing dualnet here would be a cycle)."""
    import importlib.metadata

    try:
        return importlib.metadata.version("dualnet")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def input_shape_of(model: Any, input_shape: Any = None) -> tuple[int, ...]:
    """The example shape (C, H, W) from the argument or `model.input_shape`; ExportError if neither."""
    shape = input_shape if input_shape is not None else getattr(model, "input_shape", None)
    if shape is None:
        raise ExportError("export: the model records no input_shape; pass input_shape=(C, H, W) "
                          "(CLI: --input-shape C,H,W)")
    ok = isinstance(shape, (tuple, list)) and len(shape) >= 1 and all(whole_number(d) is not None for d in shape)
    if not ok:
        raise ExportError(f"export: input_shape must be positive ints such as (1, 28, 28), without the "
                          f"batch axis; got {shape!r}")
    return tuple(int(d) for d in shape)


def normalization_of(model: Any, given: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel (mean, std) as arrays broadcasting over one example (C, 1, 1), or None.

    From the argument, else `model.metadata["normalization"]` (checkpoints), else
    `model.normalization`; each a dict {"mean": [...], "std": [...]} of one value per input
    channel (or one value for all)."""
    source = "the normalization argument"
    if given is None:
        given = (getattr(model, "metadata", None) or {}).get("normalization")
        source = "the model's metadata 'normalization'"
    if given is None:
        given = getattr(model, "normalization", None)
        source = "model.normalization"
    if given is None:
        return None
    try:  # the same checks as training's (dn.data.check_normalization)
        checked = check_normalization(given, shape[0], f"export ({source})")
    except DataError as exc:
        raise ExportError(str(exc)) from None
    mean, std = np.asarray(checked["mean"], np.float64), np.asarray(checked["std"], np.float64)
    per_channel = (-1,) + (1,) * (len(shape) - 1)
    return mean.reshape(per_channel), std.reshape(per_channel)


def export_onnx(model: Layer, path: str | os.PathLike, input_shape: tuple[int, ...] | None = None,
                opset: int = DEFAULT_OPSET, normalization: dict | None = None, fold_normalization: bool = True,
                check: bool = True) -> pathlib.Path:
    """Write `model` as an ONNX inference graph; returns the path.

    The graph takes "input" (N, C, H, W) float32 with a dynamic batch axis N (shape from
    `input_shape` or `model.input_shape`) and gives "output" (N, *out). Weights are float32
    (float64 ones are cast); Dropout is left out and BatchNorm uses its running statistics: the
    model as it computes in eval mode. A recorded input normalization (see normalization_of) is
    folded in as Sub/Div after the input when `fold_normalization`, so the graph takes inputs as
    they were before normalization; either way it is stored in the model's metadata_props. With
    `check`, the file must pass `onnx.checker.check_model(..., full_check=True)`.
    """
    onnx = require("onnx")
    from ..outputs import writing
    from .graph import Graph

    if not isinstance(model, Layer):
        raise ExportError(f"export: expected a dualnet model (a Layer such as Sequential), got {type(model).__name__}")
    newest = onnx.defs.onnx_opset_version()
    if whole_number(opset, MIN_OPSET, newest) is None:
        raise ExportError(f"export: opset must be an int from {MIN_OPSET} to {newest} (this onnx), got {opset!r}")
    shape = input_shape_of(model, input_shape)
    norm = normalization_of(model, normalization, shape)
    g = Graph()
    x = first = g.fresh("input")
    if norm is not None and fold_normalization:
        x = g.op("Sub", [x, g.const(norm[0].astype(np.float32), "input_mean")], "normalize_sub")
        x = g.op("Div", [x, g.const(norm[1].astype(np.float32), "input_std")], "normalize_div")
    y, out_shape = convert(model, g, x, shape, scoped=False)
    version = _version()
    metadata = {"dualnet_version": version, "input_shape": json.dumps(list(shape))}
    spec = getattr(model, "spec", None)
    if spec:
        metadata["dualnet_model"] = json.dumps(spec)
    if norm is not None:
        metadata["normalization"] = json.dumps({"mean": norm[0].ravel().tolist(), "std": norm[1].ravel().tolist(),
                                                "folded": bool(fold_normalization)})
    name = (spec or {}).get("name") or model.name
    proto = g.model(first, y, shape, out_shape, int(opset), str(name), metadata, version)
    if check:
        onnx.checker.check_model(proto, full_check=True)
    path = pathlib.Path(path)
    with writing(path, "ONNX file") as f:  # refuses an input of the command, a directory, FIFO or device
        f.write(proto.SerializeToString())
    return path
