"""ONNX export: `dn.export_onnx(model, "model.onnx")`, and converters for custom layers.

    import dualnet as dn
    dn.export_onnx(dn.models.lenet5(), "lenet5.onnx")       # input (N, 1, 28, 28) -> (N, 10)

    @dn.export.register_converter(MyScale)                   # a custom layer
    def _(layer, g, x, shape):
        return g.op("Mul", [x, g.weight(layer.factor, "factor")])

Modules: registry (the converter table, `convert`), spatial (conv and pooling), dense (Linear,
activations, Flatten, Dropout), resample (ConvTranspose2d, Upsample, the padding layers, Softmax,
LogSoftmax), structure (Sequential, Residual, BatchNorm), graph (the one module
that imports onnx), writer (`export_onnx`), verify (onnxruntime against dualnet). onnx is imported
only when a file is written: `pip install "dualnet[onnx]"`.
"""

from __future__ import annotations

from . import dense, resample, spatial, structure  # noqa: F401  (they register the built-in converters)
from .registry import CONVERTERS, ExportError, converter_for, register_converter
from .verify import compare_with_onnxruntime
from .writer import DEFAULT_OPSET, MIN_OPSET, OnnxMissingError, export_onnx

__all__ = ["export_onnx", "register_converter", "converter_for", "CONVERTERS", "ExportError", "OnnxMissingError",
           "compare_with_onnxruntime", "DEFAULT_OPSET", "MIN_OPSET"]
