"""The kernels PyTorch eager would run for one training step of a dualnet model, for the cost model
(kernel_cost.py): the comparison column of gpu_kernel_report.py. An ideal, not a trace: what
cuDNN and PyTorch's CUDA kernels do at best, same arithmetic as dualnet (FP32, no TF32).

Per layer, forward then backward (x: input, y: output, n: batch):
  Conv2d          cuDNN implicit GEMM: forward (M = n*out_h*out_w, N = out, K = in/groups*kh*kw) reading
                  x, w and writing y once (no column matrix); data gradient (not for the first layer) and
                  weight gradient likewise; bias add and bias gradient one kernel each when there is a bias
  BatchNorm       one kernel forward (reads x twice: statistics, then apply), one backward (reads dy, x twice)
  ReLU            one kernel forward, one backward (threshold_backward)
  MaxPool2d       one forward (values + indices); backward: a zero fill and one scatter
  Linear          one cuBLASLt product with the bias in its epilogue; two products and a bias sum backward
  GlobalAvgPool   one kernel each way; Residual: one add forward, one gradient add backward
  loss            log_softmax + nll_loss forward, their two backwards and a zero fill
  step            one batch gather; SGD with momentum as multi-tensor kernels (3 launches over all parameters)
"""

from __future__ import annotations

import math
from typing import Any

from kernel_cost import Launch, gemm_launch

_F = 4  # float32 bytes


def _ew(name: str, elems: int, nbytes: int, flops_per: float = 1.0) -> Launch:
    """An elementwise or reduction kernel over `elems` elements, one thread each."""
    return Launch(name, max(1, math.ceil(elems / 256)), 256, 0, nbytes, flops_per * elems, 1)


def _layer(layer: Any, shape: tuple[int, ...], n: int, first: bool, fwd: list[Launch], bwd: list[Launch]) \
        -> tuple[int, ...]:
    """Append the layer's forward and backward kernels; return its output shape (without n)."""
    kind = type(layer).__name__
    out = tuple(layer.output_shape(shape))
    x, y = n * math.prod(shape), n * math.prod(out)
    if kind == "Sequential":
        for child in layer.layers:
            shape = _layer(child, shape, n, first, fwd, bwd)
            first = False
        return shape
    if kind == "Residual":
        _layer(layer.body, shape, n, first, fwd, bwd)
        if layer.shortcut is not None:
            _layer(layer.shortcut, shape, n, first, fwd, bwd)
        fwd.append(_ew("add (residual)", y, 3 * y * _F))
        if not first:
            bwd.append(_ew("add (gradient of a fork)", x, 3 * x * _F))
        return out
    if kind == "Conv2d":
        o, c = layer.out_channels, layer.in_channels
        kh, kw = layer.kernel_size
        k = c // layer.groups * kh * kw
        hw = math.prod(out[1:])
        w = o * k
        fwd.append(gemm_launch("cudnn conv forward", n * hw, o, k, _F, "fp32", (x + w + y) * _F))
        bwd.append(gemm_launch("cudnn conv wgrad", o, k, n * hw, _F, "fp32", (x + w + y) * _F))
        if not first:
            bwd.append(gemm_launch("cudnn conv dgrad", n * math.prod(shape[1:]), c, o // layer.groups * kh * kw,
                                   _F, "fp32", (x + w + y) * _F))
        if layer.bias is not None:
            fwd.append(_ew("add bias", y, 2 * y * _F))
            bwd.append(_ew("bias grad (sum)", y, y * _F))
        return out
    if kind in ("BatchNorm2d", "BatchNorm1d"):
        fwd.append(_ew("batch_norm forward", x, 3 * x * _F, 6))
        bwd.append(_ew("batch_norm backward", x, 5 * x * _F, 10))
        return out
    if kind in ("ReLU", "LeakyReLU"):
        fwd.append(_ew("relu", x, 2 * x * _F))
        bwd.append(_ew("threshold_backward", x, 3 * x * _F))
        return out
    if kind in ("MaxPool2d", "AvgPool2d"):
        fwd.append(_ew("pool forward", y, (x + 2 * y) * _F, 4))
        bwd.append(_ew("zero fill", x, x * _F))
        bwd.append(_ew("pool backward", y, (x + 2 * y) * _F))
        return out
    if kind == "GlobalAvgPool2d":
        fwd.append(_ew("mean (global pool)", y, (x + y) * _F))
        bwd.append(_ew("global pool backward", x, (x + y) * _F))
        return out
    if kind == "Linear":
        i, o = layer.in_features, layer.out_features
        fwd.append(gemm_launch("cublasLt addmm", n, o, i, _F, "fp32"))
        bwd.append(gemm_launch("cublas mm (wgrad)", o, i, n, _F, "fp32"))
        if not first:
            bwd.append(gemm_launch("cublas mm (dgrad)", n, i, o, _F, "fp32"))
        if layer.bias is not None:
            bwd.append(_ew("bias grad (sum)", y, y * _F))
        return out
    if kind == "Dropout":
        fwd.append(_ew("dropout", x, 3 * x * _F))
        bwd.append(_ew("dropout backward", x, 3 * x * _F))
        return out
    if kind == "Flatten":
        return out
    raise SystemExit(f"torch_ideal: no PyTorch kernels known for layer {kind}; add them to torch_ideal.py")


def torch_step_launches(model: Any, n: int) -> list[Launch]:
    """The ideal PyTorch eager kernels of one SGD-with-momentum training step of `model` at batch n."""
    fwd: list[Launch] = []
    bwd: list[Launch] = []
    shape = tuple(model.input_shape)
    out = _layer(model, shape, n, True, fwd, bwd)
    k = math.prod(out)
    params = sum(p.data.size for p in model.parameters())
    loss = [_ew("log_softmax", n * k, 2 * n * k * _F, 8), _ew("nll_loss", n, n * k * _F),
            _ew("zero fill (nll grad)", n * k, n * k * _F), _ew("nll_loss backward", n, n * k * _F),
            _ew("log_softmax backward", n * k, 3 * n * k * _F, 4)]
    gather = [_ew("index (batch gather)", n * math.prod(shape), 2 * n * math.prod(shape) * _F)]
    sgd = [_ew("multi-tensor SGD", params, 4 * params * _F, 3) for _ in range(3)]
    return gather + fwd + loss + list(reversed(bwd)) + sgd
