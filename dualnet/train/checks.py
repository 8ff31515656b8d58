"""fit's checks: the data fits the model, the run can resume, and divergence (where NaN/inf first
appears, finite gradients and parameters) with its messages; gradient clipping; the data's dtype."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import DataError
from .state import TrainingDiverged, TrainState

_TRY = "Try a lower --lr or --clip-grad"


def check_fits(model: Any, dataset: Any, model_name: str = "the model") -> None:
    """Raise DataError unless `model` accepts `dataset`'s images, of the shape it was built for
    (`model.input_shape`, where set), and outputs a score for every label.

    Checked from shapes alone, before any computation, so that a mismatch is explained instead
    of failing deep inside a layer (or reading past the logits with an out-of-range label).
    """
    if not hasattr(model, "layers") or len(dataset) == 0:
        return
    shape = tuple(dataset.images.shape[1:])
    try:
        out = model.output_shape(shape)
    except ValueError as exc:
        raise DataError(f"{dataset.name}: images of shape {shape} do not fit {model_name}: {exc}") from None
    # layers such as global pooling take any size, but a model sees only the size it was built for
    built = tuple(getattr(model, "input_shape", None) or ())
    if len(built) == len(shape) and built != shape:
        raise DataError(f"{dataset.name}: images of shape {shape} differ from the {built} {model_name} was built "
                        "for (and trained on); give data of that shape")
    if int(dataset.labels.min()) < 0:
        raise DataError(f"{dataset.name}: label {int(dataset.labels.min())} is negative; labels are classes 0..K-1")
    classes = max(int(getattr(dataset, "num_classes", 0) or 0), int(dataset.labels.max()) + 1)
    if len(out) != 1 or classes > out[0]:
        raise DataError(f"{dataset.name}: the data has {classes} classes (labels 0..{classes - 1}), but "
                        f"{model_name} outputs {'x'.join(map(str, out))} scores per image (one per class needed)")


def check_resumable(state: TrainState, steps_per_epoch: int) -> None:
    """Raise ValueError unless `state` stands inside an epoch of `steps_per_epoch` steps.

    step == steps_per_epoch is a state older versions saved when a signal landed on an epoch's last
    step: the epoch's steps are all done, only its end (record, validation, callbacks) remains."""
    if not 0 <= state.step <= steps_per_epoch or (state.step and not state.seen):
        raise ValueError(f"fit: cannot resume at step {state.step} of an epoch of {steps_per_epoch} "
                         f"steps ({state.seen} images seen): the state belongs to another run")


def first_nonfinite_layer(model: Any, images: Any, labels: Any) -> str:
    """Re-run the failing batch layer by layer to name where NaN/inf first appears."""
    xp = model.device.xp
    for name, p in model.named_parameters():
        if not bool(xp.isfinite(p.data).all()):
            return f"parameter {name}"
    x = images
    for layer in getattr(model, "layers", [model]):
        x = layer.forward(x)
        if not bool(xp.isfinite(x).all()):
            return f"layer {layer.name} (its output)"
    for name, p in reversed(list(model.named_parameters())):
        if not bool(xp.isfinite(p.grad).all()):
            return f"the gradient of {name}"
    return "the loss (every layer output was finite)"


def parameter_dtype(model: Any) -> np.dtype:
    """The dtype of the model's parameters (float32 for a model without any)."""
    first = next(iter(model.parameters()), None)
    return np.dtype(first.data.dtype) if first is not None else np.dtype(np.float32)


def grads_finite(model: Any) -> bool:
    xp = model.device.xp
    return all(bool(xp.isfinite(p.grad).all()) for p in model.parameters())


def clip(model: Any, max_norm: float) -> None:
    """Scale all gradients together so that their global L2 norm is at most max_norm."""
    xp = model.device.xp
    total = float(xp.sqrt(sum((p.grad.astype(xp.float64) ** 2).sum() for p in model.parameters())))
    if total > max_norm:
        scale = max_norm / (total + 1e-12)
        for p in model.parameters():
            p.grad *= scale


def check_step(model: Any, loss: Any, x: Any, y: Any, state: TrainState, epoch: int) -> None:
    """Raise TrainingDiverged naming the layer when the step's loss or a gradient is not finite
    (the step is `state.step` of `epoch`, not yet counted)."""
    if not (math.isfinite(float(loss)) and grads_finite(model)):
        where = first_nonfinite_layer(model, x, y)
        raise TrainingDiverged(f"training diverged at epoch {epoch + 1}, step {state.step + 1} "
                               f"(global step {state.global_step + 1}): the loss is {float(loss)}; "
                               f"non-finite values first appear in {where}. {_TRY}")


def check_tally(tally: Any, state: TrainState, epoch: int) -> None:
    """Raise TrainingDiverged if the device tally saw a non-finite gradient."""
    bad = tally.divergence()
    if bad is not None:
        first, where = bad
        raise TrainingDiverged(f"training diverged at epoch {epoch + 1}, step {state.step} (global step "
                               f"{state.global_step}): non-finite values first appear in the gradient of {where} "
                               f"at global step {first}. {_TRY}")


def check_epoch(model: Any, tally: Any, record: dict, state: TrainState, steps_per_epoch: int) -> None:
    """Raise TrainingDiverged when the epoch's mean loss or a parameter is not finite: the epoch's
    last update has not been seen by a loss yet, and nothing non-finite may reach the callbacks
    (they save checkpoints). A deferred tally checks the parameters in one pass first."""
    epoch = record["epoch"]
    if not math.isfinite(record["train_loss"]):
        raise TrainingDiverged(f"training diverged in epoch {epoch}: the mean loss is "
                               f"{record['train_loss']}; try a lower --lr or --clip-grad")
    if tally.deferred and tally.parameters_finite():
        return
    xp = model.device.xp
    for name, p in model.named_parameters():
        if not bool(xp.isfinite(p.data).all()):
            raise TrainingDiverged(f"training diverged by the end of epoch {epoch} (step {steps_per_epoch}, "
                                   f"global step {state.global_step}): parameter {name} became non-finite. {_TRY}")
