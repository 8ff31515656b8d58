"""Batch norm folded into the preceding convolution for inference (eval mode under `no_grad()`).

In eval mode a BatchNorm2d is a per-channel affine map of its input, with
s = weight / sqrt(running_var + eps): y = (z - running_mean) * s + bias. After a Conv2d
(z = w * x + b) the two are one convolution with

    w' = w * s (per output channel)        b' = (b - running_mean) * s + bias

so inference skips a whole pass over every activation (and, on the CPU table, the batch norm's
layout work). `eval_steps` rewrites a Sequential's steps for one eval forward: each Conv2d +
BatchNorm2d pair (and a ReLU right after it, as the convolution's activation) becomes a
`FoldedConv`, each Residual + ReLU an `EvalResidualReLU` (its body and shortcut, run through
their own forward, fold their own); the other layers go through the usual plan (`fused.plan`).

The folded weights are computed from the current parameters and running statistics, never stored
in the model (checkpoints, `named_parameters`, `state_dict`-like walks see only the originals):
once per forward call, or once per eval pass inside `eval_pass()` (dn.evaluate and dn.predict
open one around their batches, during which nothing can train the model). Folding happens only
when nothing is recorded for backward (`no_grad()`), so a backward after an eval-mode forward
still differentiates the unfused layers. The values equal the unfused forward's within float32
rounding (tests/layers/test_bn_fold.py). `Sequential(..., fuse=False)` folds nothing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import UsageError
from .base import Layer
from .conv import Conv2d
from .elementwise import ReLU
from .fused import FusedStep, plan
from .grad_mode import grad_enabled
from .norm import BatchNorm2d
from .residual import Residual

_PASS = threading.local()  # the eval pass's folded steps, per thread: {id(sequential): (key, steps)}


@contextlib.contextmanager
def eval_pass() -> Iterator[None]:
    """Within the block, each Sequential folds its batch norms once and reuses the folded
    weights for every forward (an evaluation or prediction over many batches). The parameters
    and running statistics must not change inside the block; nested blocks share the outer one."""
    if getattr(_PASS, "cache", None) is not None:
        yield
        return
    _PASS.cache = {}
    try:
        yield
    finally:
        _PASS.cache = None


def foldable(conv: Layer, bn: Layer) -> bool:
    """Whether `bn` right after `conv` folds into it: exact types (a subclass may change what its
    forward does), the batch norm in eval mode, matching channels, one device."""
    return (type(conv) is Conv2d and type(bn) is BatchNorm2d and not bn.training
            and bn.num_features == conv.out_channels and bn.device == conv.device)


class FoldedConv(FusedStep):
    """conv -> eval-mode batch norm (-> ReLU) as one convolution with folded weight and bias.

    x: (N, C, H, W) -> (N, out_channels, out_h, out_w). Inference only: it keeps nothing for
    backward (backward raises, naming the step, as after any forward under no_grad())."""

    def __init__(self, conv: Conv2d, bn: BatchNorm2d, relu: ReLU | None = None):
        super().__init__(*((conv, bn) if relu is None else (conv, bn, relu)))
        self.conv, self.act = conv, None if relu is None else "relu"
        self.weight, self.bias = fold(conv, bn)

    def forward(self, x: Any) -> Any:
        conv = self.conv
        geom = conv.input_geometry(x)
        y, _ = self.ops.conv2d_forward(x, self.weight, self.bias, geom, conv.groups, act=self.act)
        self._cache = None
        return y

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        return self._need_cache()  # raises: a folded step only runs under no_grad()


def fold(conv: Conv2d, bn: BatchNorm2d) -> tuple[Any, Any]:
    """(w', b'): the conv's weight (out, C // groups, kh, kw) and a bias (out,) with `bn`'s eval
    map folded in, on the layers' device and in their dtype. The scale is computed as the
    batch norm's eval op computes it (1 / sqrt(var + eps), times the weight), so the folded
    convolution differs from conv-then-batch-norm by float rounding only."""
    xp = bn.device.xp  # the array module, not an op: every op a layer calls is declared on the reference
    mean, var = bn.running_mean, bn.running_var
    scale = 1 / xp.sqrt(var + var.dtype.type(bn.eps))
    if bn.weight is not None:
        scale = scale * bn.weight.data
    w = conv.weight.data * scale.reshape(-1, 1, 1, 1)
    b = (conv.bias.data - mean) * scale if conv.bias is not None else -mean * scale
    if bn.bias is not None:
        b = b + bn.bias.data
    return w, b


class EvalResidualReLU(FusedStep):
    """relu(body(x) + shortcut(x)) for inference, with the body and the shortcut run through their
    own forward (so their batch norms fold, the body's last one into its last convolution) and
    the sum and ReLU in one op (add_relu_forward). Training's fused step (fused.ResidualReLU)
    runs the body's steps itself, which would bypass the folding. x: (N, C, H, W)."""

    def __init__(self, res: Residual, relu: ReLU):
        super().__init__(res, relu)
        self.res = res

    def forward(self, x: Any) -> Any:
        res = self.res
        y = res.body(x)
        side = res.shortcut(x) if res.shortcut is not None else x
        if y.shape != side.shape:
            raise UsageError(f"{res.name}: the body gave shape {tuple(y.shape)} but the shortcut "
                             f"{tuple(side.shape)} for input {tuple(x.shape)}; both paths must give one shape")
        self._cache = None
        return self.ops.add_relu_forward(y, side)

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        return self._need_cache()  # raises: this step only runs under no_grad()


def _folded_layers(layers: Sequence[Layer]) -> list[Layer] | None:
    """`layers` with each foldable Conv2d + BatchNorm2d (+ ReLU) as a FoldedConv and each
    Residual + ReLU as an EvalResidualReLU (whose body folds its own); None if nothing changes."""
    out: list[Layer] = []
    i, folded = 0, False
    while i < len(layers):
        if i + 1 < len(layers) and foldable(layers[i], layers[i + 1]):
            relu = layers[i + 2] if i + 2 < len(layers) and type(layers[i + 2]) is ReLU else None
            out.append(FoldedConv(layers[i], layers[i + 1], relu))  # type: ignore[arg-type]
            i += 2 if relu is None else 3
            folded = True
        elif i + 1 < len(layers) and type(layers[i]) is Residual and type(layers[i + 1]) is ReLU:
            out.append(EvalResidualReLU(layers[i], layers[i + 1]))  # type: ignore[arg-type]
            i += 2
            folded = True
        else:
            out.append(layers[i])
            i += 1
    return out if folded else None


def run_inference(seq: Any, steps: list[Layer], x: Any, run: Callable[[list[Layer], Any], Any]) -> Any:
    """An eval-mode forward of Sequential `seq` under no_grad(): `run(steps, x)` with the batch
    norms folded (eval_steps), inside one eval pass, so that the Sequentials nested in it (a
    block's body and shortcut) fold once per forward, not once per chunk; the outermost
    Sequential alone runs a large batch in the table's cache-sized chunks (inference_in_chunks),
    since a nested one would cut its chunk into smaller ones still."""
    if getattr(_PASS, "inside", False):
        folded = seq._ran = eval_steps(seq, steps)
        return run(folded, x)
    with eval_pass():
        _PASS.inside = True
        try:
            folded = seq._ran = eval_steps(seq, steps)
            return seq.ops.inference_in_chunks(lambda part: run(folded, part), x)
        finally:
            _PASS.inside = False


def eval_steps(seq: Any, steps: list[Layer]) -> list[Layer]:
    """The steps an eval forward of Sequential `seq` runs: `steps` (its plan) with batch norms
    folded into their convolutions, when nothing is recorded for backward and `seq.fuse` is on;
    else `steps` unchanged. The unfolded layers' caches are dropped, as their own no_grad()
    forward would drop them, so a backward raises instead of using a stale cache."""
    if grad_enabled() or not seq.fuse:
        return steps
    cache = getattr(_PASS, "cache", None)
    key = (tuple(map(id, seq.layers)), tuple(lay.training for lay in seq.layers))
    if cache is not None and id(seq) in cache and cache[id(seq)][0] == key:
        return cache[id(seq)][1]
    folded = _folded_layers(seq.layers)
    result = steps if folded is None else plan(folded)
    if folded is not None:
        for step in result:
            for part in step.parts if isinstance(step, (FoldedConv, EvalResidualReLU)) else ():
                part._cache = None
    if cache is not None:
        cache[id(seq)] = (key, result)
    return result
