"""Losses with hand-written backward passes."""

from __future__ import annotations

from typing import Any

from .backend import array_device, check_same_device, device_scope, get_device
from .errors import UsageError

__all__ = ["SoftmaxCrossEntropy"]


class SoftmaxCrossEntropy:
    """Softmax + cross-entropy, mean over the batch, log-sum-exp stable.

    `loss = crit(logits, labels)` with logits (N, K) and integer labels (N,) returns a float;
    `crit.backward()` returns dL/dlogits (N, K). `crit.loss_array` keeps the loss on the device
    so a training loop can accumulate it without a host sync per step.
    """

    def __init__(self, device: Any = None) -> None:
        self.device = device  # None: follow the arrays (see _ops_for)
        self._cache: Any = None
        self.loss_array: Any = None
        self.probs: Any = None

    def forward(self, logits: Any, labels: Any, sync: bool = True) -> Any:
        if getattr(logits, "ndim", None) != 2:
            shape = tuple(getattr(logits, "shape", ()))
            raise UsageError(f"SoftmaxCrossEntropy: logits must be (N, K), got shape {shape}")
        if getattr(labels, "shape", None) != (logits.shape[0],):
            raise UsageError(f"SoftmaxCrossEntropy: labels must be ({logits.shape[0]},) to match logits "
                             f"{tuple(logits.shape)}, got shape {tuple(getattr(labels, 'shape', ()))}")
        if labels.dtype.kind not in "iu":
            raise UsageError(f"SoftmaxCrossEntropy: labels must be integers, got dtype {labels.dtype}")
        check_same_device("SoftmaxCrossEntropy", logits=logits, labels=labels)
        if sync or hasattr(labels, "__array_interface__"):
            # host labels cost a min and a max; device labels only when the caller syncs anyway
            # (fit checks its data's labels once, before the first step)
            with device_scope(labels):  # the min and max run on the labels' GPU
                _check_labels(labels, logits.shape[1])
        ops = _ops_for(logits, self.device)
        rows, probs = ops.softmax_xent_forward(logits, labels)
        self.probs = probs
        self._cache = (probs, labels)
        with device_scope(rows):  # the mean is allocated on the logits' GPU
            self.loss_array = rows.mean()
        return float(self.loss_array) if sync else self.loss_array

    __call__ = forward

    def backward(self, grad: float = 1.0) -> Any:
        if self._cache is None:
            raise RuntimeError("SoftmaxCrossEntropy: backward() called before forward()")
        probs, labels = self._cache
        return _ops_for(probs, self.device).softmax_xent_backward(probs, labels, grad / probs.shape[0])


def _check_labels(labels: Any, classes: int) -> None:
    """Every label must name one of the `classes` logits: -1 would silently read the last one."""
    if not labels.size:
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= classes:
        bad = low if low < 0 else high
        where = int((labels == bad).argmax())
        raise UsageError(f"SoftmaxCrossEntropy: label {bad} at position {where} is outside [0, {classes}): the "
                         f"logits score {classes} classes; labels must be 0..{classes - 1}")


def _ops_for(array: Any, device: Any = None) -> Any:
    """The op table to use: an explicit device, else the array's own kind of device.

    A device array (CuPy's, emu's) always uses its own device's ops; a NumPy array uses the
    active device when that holds NumPy arrays ("ref" or "cpu"), else the CPU table.
    """
    from .backend import get_device_object

    if device is not None:
        return get_device_object(device).ops
    where = array_device(array)
    if where != "host":
        return get_device_object(where).ops
    dev = get_device()
    return dev.ops if dev.kind in ("ref", "cpu") else get_device_object("cpu").ops
