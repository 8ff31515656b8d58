"""compare_with_onnxruntime: run an exported file and the dualnet model on the same inputs."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ..backend import to_device, to_numpy
from .registry import ExportError
from .writer import require


def compare_with_onnxruntime(model: Any, path: str | os.PathLike, batch: int = 8, seed: int = 0,
                             rtol: float = 1e-4, atol: float = 1e-5) -> dict:
    """Feed `batch` uniform [0, 1) inputs (N, *input_shape) to onnxruntime and to `model` in eval mode.

    The dualnet side normalises the inputs first when the file folded a normalization in.
    Returns {"batch", "max_abs_diff", "argmax_agreement" (a fraction)}; ExportError when the
    outputs differ by more than rtol/atol.
    """
    ort = require("onnxruntime")
    onnx = require("onnx")
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    shape = tuple(json.loads(meta["input_shape"]))
    x = np.random.default_rng(seed).uniform(0.0, 1.0, size=(batch, *shape)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    fed = x
    norm = json.loads(meta.get("normalization", "null"))
    if norm and norm["folded"]:
        per_channel = (-1,) + (1,) * (len(shape) - 1)
        fed = ((x - np.reshape(norm["mean"], per_channel)) / np.reshape(norm["std"], per_channel)).astype(np.float32)
    dtype = next((to_numpy(p.data).dtype for p in model.parameters()), np.dtype(np.float32))
    was_training = model.training
    model.eval()
    try:
        want = to_numpy(model(to_device(fed.astype(dtype), model.device))).astype(np.float32)
    finally:
        model.train(was_training)
    if got.shape != want.shape:
        raise ExportError(f"export check: {path} gives outputs of shape {got.shape}, the model {want.shape}")
    diff = float(np.max(np.abs(got - want))) if got.size else 0.0
    agree = float(np.mean(got.argmax(axis=1) == want.argmax(axis=1))) if got.ndim == 2 else 1.0
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        raise ExportError(f"export check: onnxruntime and dualnet disagree on {path}: max |diff| {diff:.3g} "
                          f"(rtol {rtol:g}, atol {atol:g}); please report this model")
    return {"batch": batch, "max_abs_diff": diff, "argmax_agreement": agree}
