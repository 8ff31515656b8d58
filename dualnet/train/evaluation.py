"""`dn.evaluate`: a model's accuracy, loss, per-class accuracy and confusion matrix on a dataset."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import data as _data
from ..backend import to_device, to_numpy
from ..errors import DataError, positive_int
from ..layers.bn_fold import eval_pass
from ..layers.grad_mode import no_grad
from ..losses import SoftmaxCrossEntropy
from .checks import check_fits, parameter_dtype
from .guards import out_of_memory_as

#: evaluate's default batch: on "cpu" an eval-mode forward runs in cache-sized chunks whatever the
#: batch (ops/cpu.py, inference_in_chunks), so a large batch only saves per-batch work (the loss,
#: the copies); measured fastest of 64-5000 within noise (benchmarks/RESULTS.md)
EVAL_BATCH_SIZE = 1000


def evaluate(model: Any, dataset: Any, batch_size: int = EVAL_BATCH_SIZE) -> dict:
    """Accuracy, mean loss, per-class accuracy and the confusion matrix (rows: true class).

    Inputs are normalized with the model's normalization when it has one (dn.data.model_normalization).

    Returns {"accuracy", "loss", "n", "per_class" (K,), "confusion" (K, K) int64,
    "predictions" (N,) int64, "probabilities" (N, K) float32}. Raises DataError for data the model
    cannot take and DeviceOutOfMemory (suggesting half the batch size) when the GPU runs out.
    """
    batch_size = positive_int(batch_size, "batch_size", "evaluate")
    check_fits(model, dataset)
    was_training = model.training
    model.eval()
    dev = model.device
    crit = SoftmaxCrossEntropy(device=dev)
    dtype = parameter_dtype(model)
    if len(dataset) == 0:
        raise DataError(f"{getattr(dataset, 'name', 'the data')}: the split is empty (0 images); nothing to evaluate")
    k = int(getattr(dataset, "num_classes", 0) or int(dataset.labels.max()) + 1)
    norm = _data.model_normalization(model)  # the inputs as the model was trained on them
    preds, probs, loss_sum = [], [], 0.0
    try:
        # on "gpu:N" every array of the loop is allocated on N; batch norms fold once for all batches
        with dev.scope(), out_of_memory_as(batch_size, "evaluation"), eval_pass():
            for start in range(0, len(dataset), batch_size):
                images = _data.normalize(dataset.images[start:start + batch_size], norm)
                xb = to_device(images.astype(dtype, copy=False), dev)
                yb = to_device(dataset.labels[start:start + batch_size].astype(np.int32), dev)
                with no_grad():  # inference: nothing kept for backward, and the CPU may run chunks
                    logits = model(xb)
                loss_sum += float(crit.forward(logits, yb, sync=False)) * len(yb)
                probs.append(to_numpy(crit.probs).astype(np.float32))
                preds.append(to_numpy(logits.argmax(axis=1)).astype(np.int64))
    finally:
        model.train(was_training)
    pred = np.concatenate(preds) if preds else np.zeros(0, np.int64)
    true = dataset.labels.astype(np.int64)
    kk = max(k, int(pred.max(initial=-1)) + 1)
    confusion = np.bincount(true * kk + pred, minlength=kk * kk).reshape(kk, kk)
    per_class = np.diag(confusion) / np.maximum(confusion.sum(axis=1), 1)
    n = len(true)
    return dict(accuracy=float((pred == true).mean()) if n else float("nan"), loss=loss_sum / max(n, 1), n=n,
                per_class=per_class, confusion=confusion, predictions=pred,
                probabilities=np.concatenate(probs) if probs else np.zeros((0, kk), np.float32))
