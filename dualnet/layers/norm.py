"""Batch normalization: BatchNorm1d and BatchNorm2d (PyTorch's semantics and argument names).

Training: each channel is normalised with the mean and the biased variance of the batch (over
N and every spatial position), then scaled by `weight` and shifted by `bias`; the running
statistics follow `running = (1 - momentum) * running + momentum * batch`, with the *unbiased*
batch variance for `running_var`. Eval: the same affine map with the running statistics, which a
frozen batch norm (weight and bias frozen, `freeze()`) also uses in training mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import on_device, to_device
from ..errors import UsageError
from .base import Layer, Parameter, _positive_int


class _EvalInput:
    """What an eval-mode forward keeps: its input x, for the gradient of the running-statistics map,
    and for a fused ReLU / residual (layers/fused.py) the output y (the ReLU's mask), act and
    whether a residual was added."""

    __slots__ = ("x", "y", "act", "has_residual")

    def __init__(self, x: Any, y: Any = None, act: str | None = None, has_residual: bool = False):
        self.x, self.y, self.act, self.has_residual = x, y, act, has_residual


class _Trained:
    """What a plain training-mode forward keeps: batchnorm_forward's `saved`, which belongs to the
    op table (any object), wrapped so it is never taken for batchnorm_act_forward's."""

    __slots__ = ("saved",)

    def __init__(self, saved: Any):
        self.saved = saved


class _BatchNorm(Layer):
    """Shared body; subclasses fix the accepted input ranks (`ranks`, channel axis 1)."""

    kind = "bn"
    ranks: tuple[int, ...] = ()
    shape_text = ""
    # buffers (register_buffer): running statistics (c,) and the count of training batches seen
    running_mean: Any
    running_var: Any
    _batches: Any  # num_batches_tracked's device array; _batches_pending: training batches not yet in it
    _batches_pending: int

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 dtype: Any = np.float32):
        super().__init__()
        name = type(self).__name__
        self.num_features = _positive_int(num_features, "num_features", name)
        if not (isinstance(eps, (int, float)) and not isinstance(eps, bool) and eps > 0):
            raise UsageError(f"{name}: eps must be a positive number, got {eps!r}")
        if not (isinstance(momentum, (int, float)) and not isinstance(momentum, bool) and 0 <= momentum <= 1):
            raise UsageError(f"{name}: momentum must be a number in [0, 1], got {momentum!r}")
        if not isinstance(affine, bool):
            raise UsageError(f"{name}: affine must be True or False, got {affine!r}")
        self.eps, self.momentum, self.affine = float(eps), float(momentum), affine
        c, dev = self.num_features, self.device
        self.weight = Parameter(to_device(np.ones(c, dtype), dev), "weight", dev) if affine else None
        self.bias = Parameter(to_device(np.zeros(c, dtype), dev), "bias", dev) if affine else None
        self.register_buffer("running_mean", to_device(np.zeros(c, dtype), dev))
        self.register_buffer("running_var", to_device(np.ones(c, dtype), dev))
        self.register_buffer("num_batches_tracked", to_device(np.zeros((), np.int64), dev))
        self._cache = None

    def config(self) -> dict[str, Any]:
        return dict(num_features=self.num_features, eps=self.eps, momentum=self.momentum, affine=self.affine)

    def statistics_frozen(self) -> bool:
        """True when weight and bias are both frozen (freeze()): the layer then normalizes with its
        running statistics in training mode too and leaves them as they are, as a frozen batch norm
        in fine-tuning should (torchvision's FrozenBatchNorm2d). Without an affine map, use eval()."""
        return (self.weight is not None and self.bias is not None and not self.weight.requires_grad
                and not self.bias.requires_grad)

    def buffer_problem(self, name: str, value: Any) -> str | None:
        """A variance below 0 (eval divides by sqrt(var + eps): NaN) or a negative batch count."""
        if name in ("running_var", "num_batches_tracked"):
            bad = np.flatnonzero(np.asarray(value).reshape(-1) < 0)
            if bad.size:
                what = "a variance" if name == "running_var" else "a count"
                return (f"holds {value.reshape(-1)[bad[0]]} at index {bad[0]} ({bad.size} negative values); {what} "
                        "is >= 0, so the file is damaged")
        return None

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) + 1 not in self.ranks or shape[0] != self.num_features:
            raise UsageError(f"{self.name}: expected inputs of shape {self.shape_text} with C = "
                             f"{self.num_features}, got examples of shape {tuple(shape)}")
        return tuple(shape)

    def _check(self, x: Any) -> int:
        """Validate x and return the number of values per channel."""
        if getattr(x, "ndim", None) not in self.ranks:
            raise UsageError(f"{self.name}: expected an input of shape {self.shape_text}, got shape "
                             f"{tuple(getattr(x, 'shape', ()))}")
        self._check_input(x, x.ndim, self.shape_text)
        if x.shape[1] != self.num_features:
            raise UsageError(f"{self.name}: expected {self.num_features} channels (num_features), got input of "
                             f"shape {tuple(x.shape)}")
        if x.dtype != self.running_mean.dtype:
            raise UsageError(f"{self.name}: input dtype {x.dtype} differs from the running statistics' dtype "
                             f"{self.running_mean.dtype}; cast one of them (model.astype(...))")
        return int(x.size // x.shape[1])

    def forward(self, x: Any) -> Any:
        """x: (N, C, ...) -> y of the same shape."""
        y, cache = self.run(x)
        self._cache = cache if self._records() else None
        return y

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        """dy like x -> dx like x (or None); adds dL/dweight, dL/dbias when affine (and not frozen).

        After an eval-mode forward it differentiates y = (x - running_mean) / sqrt(running_var + eps)
        * weight + bias, the running statistics held constant (PyTorch's eval-mode gradient)."""
        return self.run_backward(dy, self._need_cache(), need_input_grad)[0]

    def run(self, x: Any, act: str | None = None, residual: Any = None) -> tuple[Any, Any]:
        """act(batchnorm(x) + residual) -> (y like x, cache for run_backward); act None or "relu",
        residual like x or None. forward is run(x); a fused step (layers/fused.py) passes the ReLU
        that follows and a residual block's other path, and keeps the cache itself."""
        per_channel = self._check(x)
        w = self.weight.data if self.weight is not None else None
        b = self.bias.data if self.bias is not None else None
        fused = act is not None or residual is not None
        if not self.training or self.statistics_frozen():
            # backward differentiates the affine map of the running statistics (frozen batch norm)
            if not fused:
                return self.ops.batchnorm_eval(x, w, b, self.running_mean, self.running_var, self.eps), _EvalInput(x)
            y = self.ops.batchnorm_act_eval(x, w, b, self.running_mean, self.running_var, self.eps, act, residual)
            return y, _EvalInput(x, y if act == "relu" else None, act, residual is not None)
        if per_channel < 2:
            raise UsageError(f"{self.name}: training needs more than 1 value per channel to take a variance, "
                             f"got input of shape {tuple(x.shape)}; use a larger batch or eval mode")
        if fused:
            y, saved = self.ops.batchnorm_act_forward(x, w, b, self.running_mean, self.running_var, self.eps,
                                                      self.momentum, act, residual)
        else:
            y, saved = self.ops.batchnorm_forward(x, w, b, self.running_mean, self.running_var, self.eps,
                                                  self.momentum)
            saved = _Trained(saved)
        self._batches_pending += 1  # added to the device counter when read: no launch per step
        return y, saved

    def run_backward(self, dy: Any, cache: Any, need_input_grad: bool = True) -> tuple[Any, Any]:
        """For run's cache: dy like y -> (dx like x or None, dresidual like x or None: the gradient
        of the residual, None when run had none); the parameter gradients are added in."""
        w = self.weight.data if self.weight is not None else None
        grads = self.grad_buffers()
        dres = None
        if isinstance(cache, _EvalInput):
            dz = self.ops.relu_backward(dy, cache.y) if cache.act == "relu" else dy
            dx = self.ops.batchnorm_eval_backward(dz, cache.x, w, self.running_mean, self.running_var, self.eps,
                                                  *grads, need_input_grad)
            dres = dz if cache.has_residual else None
        elif isinstance(cache, _Trained):
            dx = self.ops.batchnorm_backward(dy, cache.saved, w, *grads, need_input_grad)
        else:  # batchnorm_act_forward's own saved
            dx, dres = self.ops.batchnorm_act_backward(dy, cache, w, *grads, need_input_grad)
        return dx, dres

    def grad_buffers(self) -> tuple[Any, Any]:
        """(weight gradient, bias gradient) the backward ops add into, each None when frozen or
        without an affine map (as WeightedLayer.grad_buffers)."""
        return tuple(p.grad if p is not None and p.requires_grad else None  # type: ignore[return-value]
                     for p in (self.weight, self.bias))

    @property
    @on_device  # the add is a kernel on the layer's GPU
    def num_batches_tracked(self) -> Any:
        """The count of training batches seen: a 0-d int64 on the layer's device (PyTorch's buffer).
        Training counts on the host and adds the count here, when the buffer is read (checkpoints,
        moves, `named_buffers`), so a training step launches nothing for it."""
        if self._batches_pending:
            pending, self._batches_pending = self._batches_pending, 0
            self._batches += pending
        return self._batches

    @num_batches_tracked.setter
    def num_batches_tracked(self, value: Any) -> None:
        self._batches, self._batches_pending = value, 0


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, H, W) per channel; x: (N, C, H, W)."""

    ranks = (4,)
    shape_text = "(N, C, H, W)"


class BatchNorm1d(_BatchNorm):
    """Batch normalization over N (and L) per channel; x: (N, C) or (N, C, L)."""

    ranks = (2, 3)
    shape_text = "(N, C) or (N, C, L)"
