"""Kernel-backed ops: CupyOps for "gpu", EmulatedOps for "emu".

CupyOps inherits every op from ReferenceOps (written against `self.xp`, here CuPy) and overrides
only those with a hand-written CUDA kernel: im2col, col2im, pooling (global average pooling too),
bias + activation, ReLU backward, leaky ReLU, batch normalization, softmax cross-entropy and the
optimizer updates. Matrix products are cuBLAS's, on 2-D views that need no hidden copy, with TF32
off unless switched on (ops/products.py, which CupyOps subclasses); but a convolution's input
gradient (groups == 1) is one implicit-GEMM kernel, the other path's gradient summed in (conv_dgrad.cu).

EmulatedOps is the same class with the emu array module as `xp` (dualnet/emu_array.py: NumPy
buffers behind CuPy's rules, so a host leak fails there as it would on a GPU) and the kernel
emulator as launcher: the whole GPU code path, kernels included, running on the CPU where the
NumPy reference can check it.

CuPy allocates and launches on its *current* device: every op of CupyOps, inherited ones
included, runs inside `cupy.cuda.Device(device_id)`, so an op on "gpu:N" never allocates on
another device whatever the caller's current device is.

The fused conv + ReLU + max pooling (groups == 1) is one kernel forward (fused.cu: the
convolution is recomputed per pooling window, never stored); backward is the gradient routed to
the conv output in the layout the products read (one kernel), the parameter gradients (for a
small layer one kernel straight from the input, conv_wgrad_direct; else im2col, a product added
into the weight gradient and the bias reduction) and the input gradient (a product and col2im).
Every parameter gradient is added into its buffer by the op that makes it: a product with beta =
1, a kernel that adds (grads.cu, norm.cu, fused_grads.cu). The training loop gathers each batch and
tallies each step (loss, accuracy, a finite check of the flat gradient) with one kernel each
(train.cu), so a step never waits for the host.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import numpy

from . import OPS
from .cuda_layers import LayerKernelOps
from .cuda_norm import NormKernelOps
from .geometry import ConvGeometry, PoolGeometry
from .products import ProductOps
from .reference import Geometry

_ACT = {None: 0, "relu": 1}
#: the fused convolution's backward computes its parameter gradients directly (conv_wgrad_direct, one
#: block per weight) up to this many multiply-adds, o * (c*kh*kw + 1) * n*out_h*out_w: LeNet-sized
#: layers, where im2col + a product + a bias reduction are three launches for a few microseconds of
#: work; beyond it every block's gather would re-read the input too often, and cuBLAS wins
_DIRECT_WGRAD_MACS = 1 << 25


def dgrad_tile_channels(c: int) -> int:
    """conv_dgrad's tile height bm: the smallest of 16, 32, 64 input channels that holds c (a tile is
    always 4096 outputs, so fewer channels mean wider tiles of pixels)."""
    return 16 if c <= 16 else 32 if c <= 32 else 64


class _FusedSaved:
    """What the fused conv + ReLU + max-pool kernel keeps for backward."""

    __slots__ = ("x", "y", "argmax", "geom", "pool_geom")

    def __init__(self, x, y, argmax, geom, pool_geom):
        self.x, self.y, self.argmax, self.geom, self.pool_geom = x, y, argmax, geom, pool_geom


class CupyOps(NormKernelOps, LayerKernelOps, ProductOps):
    """Ops on CUDA device `device_id` through CuPy and the kernels in dualnet/kernels."""

    name = "cupy"

    def __init__(self, device_id: int = 0, launcher: Any = None, xp: Any = None):
        if xp is None:
            import cupy

            with contextlib.suppress(ImportError):
                import cupy.cublas  # noqa: F401 - CuPy's BLAS wrappers, for the gradient GEMMs (beta = 1)
            xp = cupy
        self.xp = xp
        self.device_id = int(device_id)
        if launcher is None:
            from ..kernels.launch import CupyLauncher

            launcher = CupyLauncher(device_id)
        self.launcher = launcher

    def _scope(self) -> Any:
        """The CUDA device every op of this table runs in (see the module docstring)."""
        return self.xp.cuda.Device(self.device_id)

    def _c(self, a: Any) -> Any:
        return self.xp.ascontiguousarray(a)

    def _constant(self, value: float, n: int, dtype: Any) -> Any:
        """A cached read-only array of n `value`s (a missing bias, batch norm without an affine map):
        filled once per table, never a fill per call."""
        cache = self.__dict__.setdefault("_constants", {})
        key = (value, n, numpy.dtype(dtype))
        if key not in cache:
            cache[key] = self.xp.full(n, value, dtype=key[2])
        return cache[key]

    def _nothing(self, dtype: Any) -> Any:
        """An empty array of `dtype`, for a kernel's pointer argument of zero elements."""
        cache = self.__dict__.setdefault("_empties", {})
        key = numpy.dtype(dtype)
        if key not in cache:
            cache[key] = self.xp.empty(0, dtype=key)
        return cache[key]

    # --- fused convolution + bias + ReLU + max pooling ------------------------------------

    def conv_relu_maxpool_forward(self, x, weight, bias, geom: ConvGeometry, pool_geom: PoolGeometry,
                                  groups: int = 1):
        if groups != 1 or (pool_geom.dh, pool_geom.dw) != (1, 1):  # fused.cu pools undilated windows
            return super().conv_relu_maxpool_forward(x, weight, bias, geom, pool_geom, groups)
        x = self._c(x)
        n, c, h, w = x.shape
        o = weight.shape[0]
        shape = (n, o, pool_geom.out_h, pool_geom.out_w)
        y = self.xp.empty(shape, dtype=x.dtype)
        argmax = self.xp.empty(shape, dtype=numpy.int32)
        b = self._c(bias) if bias is not None else self._constant(0.0, o, x.dtype)
        self.launcher.launch("conv_relu_maxpool_forward", x.dtype, x, self._c(weight), b, y, argmax, n, c, h, w, o,
                             *geom, *pool_geom.kernel_args(), int(bias is not None))
        return y, _FusedSaved(x, y, argmax, geom, pool_geom)

    def conv_relu_maxpool_backward(self, dy, saved, weight, wgrad, bgrad, need_dx: bool = True):
        if not isinstance(saved, _FusedSaved):
            return super().conv_relu_maxpool_backward(dy, saved, weight, wgrad, bgrad, need_dx)
        xp = self.xp
        x, geom = saved.x, saved.geom
        n, c, h, w = x.shape
        o = weight.shape[0]
        hw = geom.out_h * geom.out_w
        dz = xp.empty((o, n * hw), dtype=dy.dtype)
        self.launcher.launch("conv_relu_maxpool_dz", dy.dtype, self._c(dy), saved.y, saved.argmax, dz, n, o,
                             geom.out_h, geom.out_w, *saved.pool_geom.kernel_args())
        k = c * geom.kh * geom.kw
        if (wgrad is not None or bgrad is not None) and o * (k + 1) * n * hw <= _DIRECT_WGRAD_MACS:
            # a small layer: both gradients from x and dz in one launch, no column matrix
            dt = dy.dtype
            self.launcher.launch("conv_wgrad_direct", dt, dz, x, self._nothing(dt) if wgrad is None else wgrad,
                                 self._nothing(dt) if bgrad is None else bgrad, n, c, h, w, o, *geom,
                                 int(wgrad is not None), int(bgrad is not None))
        else:
            if wgrad is not None:
                cols = self.im2col(x, geom)
                self._mm_add(dz, cols.reshape(k, n * hw).T, wgrad.reshape(o, k))
            if bgrad is not None:
                self._add_channel_sums(dz, 1, o, n * hw, bgrad)
        if not need_dx:
            return None
        # the column path, not conv_dgrad: a LeNet-sized layer (6 input channels fill 6 rows of a 16-row
        # tile, 49 tiles on 132 SMs) is estimated at 19 us that way against 8 us for the product + col2im
        return ProductOps._conv_input_grad(self, dz, weight, x.shape, geom, 1, None)

    # --- the convolution's input gradient: one implicit GEMM ------------------------------

    def _conv_input_grad(self, dy_cm, weight, x_shape, geom: ConvGeometry, groups: int, dx_add):
        """dx (n, c, h, w) (+ dx_add) from dy_cm (o, n*out_h*out_w) in one launch of conv_dgrad
        (conv_dgrad.cu: tiles of dx computed from shared-memory tiles of the weight and of dy gathered
        per tap; no column gradient, no col2im, the addend summed in). Grouped convolutions, and
        arrays past 2**31 elements, take ProductOps's column path."""
        n, c, h, w = x_shape
        o = weight.shape[0]
        if groups != 1 or max(n * c * h * w, dy_cm.size) >= 2**31:
            return super()._conv_input_grad(dy_cm, weight, x_shape, geom, groups, dx_add)
        dt = dy_cm.dtype
        dx = self.xp.empty(x_shape, dtype=dt)
        add = self._nothing(dt) if dx_add is None else self._c(dx_add)
        self.launcher.launch("conv_dgrad", dt, self._c(dy_cm), self._c(weight), add, dx, n, c, h, w, o, *geom,
                             dgrad_tile_channels(c), int(dx_add is not None))
        return dx

    # --- gradient accumulation -----------------------------------------------------------

    def _add_channel_sums(self, x, n: int, c: int, inner: int, out) -> None:
        """out (c,) += x viewed as (n, c, inner) summed over n and inner: a bias gradient added in
        (grads.cu; one block per channel, a fixed-order tree)."""
        self.launcher.launch("channel_sums", x.dtype, self._c(x), out, n, c, inner)

    def linear_relu_backward(self, dy, y, x, weight, wgrad, bgrad, need_dx: bool = True):
        """As ReferenceOps.linear_relu_backward: with a bias gradient wanted, the ReLU's mask and the
        bias gradient in one kernel (relu_bias_grad), then the two products."""
        if bgrad is None:
            return super().linear_relu_backward(dy, y, x, weight, wgrad, bgrad, need_dx)
        dy, y = self._c(dy), self._c(y)
        n, o = dy.shape
        dz = self.xp.empty_like(dy)
        self.launcher.launch("relu_bias_grad", dy.dtype, dy, y, dz, bgrad, n, o)
        return self.linear_backward(dz, x, weight, wgrad, None, need_dx)

    def accumulate_grads(self, wgrad, dw, bgrad, db) -> None:
        if bgrad is None:
            bgrad = db = self._nothing(wgrad.dtype)
        self.launcher.launch("accumulate_grads", wgrad.dtype, self._c(dw), self._c(db), wgrad, bgrad, wgrad.size,
                             bgrad.size)

    # --- the training loop ---------------------------------------------------------------

    def gather_batch(self, images, labels, order, start: int, stop: int):
        images = self._c(images)
        count = images.shape[0]
        per = images.size // max(count, 1)
        b = stop - start
        xb = self.xp.empty((b,) + tuple(images.shape[1:]), dtype=images.dtype)
        yb = self.xp.empty(b, dtype=numpy.int32)
        self.launcher.launch("gather_batch", images.dtype, images, self._labels(labels), self._labels(order), xb, yb,
                             count, per, order.size, start, b)
        return xb, yb

    def step_stats(self, tally, loss, logits, labels, grad, chunk: int, cap: int, slot: int, step: int) -> None:
        n, k = logits.shape
        nchunks = tally.size - 2 * cap
        self.launcher.launch("step_stats", tally.dtype, loss.reshape(1), self._c(logits), self._labels(labels),
                             grad, tally, n, k, grad.size, chunk, nchunks, cap, slot, step)

    # --- im2col / col2im -----------------------------------------------------------------

    def im2col(self, x, geom: Geometry):
        x = self._c(x)
        n, c, h, w = x.shape
        cols = self.xp.empty((c, geom.kh, geom.kw, n, geom.out_h, geom.out_w), dtype=x.dtype)
        self.launcher.launch("im2col", x.dtype, x, cols, n, c, h, w, *geom)
        return cols

    def col2im(self, cols, x_shape, geom: Geometry):
        cols = self._c(cols)
        n, c, h, w = x_shape
        x = self.xp.empty((n, c, h, w), dtype=cols.dtype)
        self.launcher.launch("col2im", cols.dtype, cols, x, n, c, h, w, *geom)
        return x

    # --- pooling (the kernels take the convolution's geometry arguments) ------------------

    def maxpool_forward(self, x, geom: PoolGeometry):
        x = self._c(x)
        n, c, h, w = x.shape
        y = self.xp.empty((n, c, geom.out_h, geom.out_w), dtype=x.dtype)
        argmax = self.xp.empty((n, c, geom.out_h, geom.out_w), dtype=numpy.int32)
        self.launcher.launch("maxpool_forward", x.dtype, x, y, argmax, n, c, h, w, *geom)
        return y, argmax

    def maxpool_backward(self, dy, saved, x_shape, geom: PoolGeometry):
        dy = self._c(dy)
        n, c, h, w = x_shape
        dx = self.xp.empty(x_shape, dtype=dy.dtype)
        self.launcher.launch("maxpool_backward", dy.dtype, dy, self._c(saved), dx, n, c, h, w, *geom)
        return dx

    def avgpool_forward(self, x, geom: PoolGeometry, include_pad: bool = True):
        x = self._c(x)
        n, c, h, w = x.shape
        y = self.xp.empty((n, c, geom.out_h, geom.out_w), dtype=x.dtype)
        self.launcher.launch("avgpool_forward", x.dtype, x, y, n, c, h, w, *geom, int(include_pad))
        return y

    def avgpool_backward(self, dy, x_shape, geom: PoolGeometry, include_pad: bool = True):
        dy = self._c(dy)
        n, c, h, w = x_shape
        dx = self.xp.empty(x_shape, dtype=dy.dtype)
        self.launcher.launch("avgpool_backward", dy.dtype, dy, dx, n, c, h, w, *geom, int(include_pad))
        return dx

    def global_avgpool_forward(self, x):
        x = self._c(x)
        n, c, h, w = x.shape
        y = self.xp.empty((n, c), dtype=x.dtype)
        self.launcher.launch("global_avgpool_forward", x.dtype, x, y, n, c, h * w)
        return y

    def global_avgpool_backward(self, dy, x_shape):
        dy = self._c(dy)
        n, c, h, w = x_shape
        dx = self.xp.empty(x_shape, dtype=dy.dtype)
        self.launcher.launch("global_avgpool_backward", dy.dtype, dy, dx, n, c, h * w)
        return dx

    # --- bias + activation ---------------------------------------------------------------

    def bias_act(self, x, bias, act, channel_major: bool):
        x = self._c(x)
        if channel_major:
            c, n, inner = x.shape
        else:
            n, c, inner = x.shape
        if bias is None:
            if act is None and not channel_major:
                return x
            bias = self._constant(0.0, c, x.dtype)
        y = self.xp.empty((n, c, inner), dtype=x.dtype)
        self.launcher.launch("bias_act_forward", x.dtype, x, self._c(bias), y, n, c, inner, _ACT[act],
                             int(channel_major))
        return y

    def relu_backward(self, dy, y):
        dy, y = self._c(dy), self._c(y)
        dx = self.xp.empty_like(dy)
        self.launcher.launch("relu_backward", dy.dtype, dy, y, dx, dy.size)
        return dx

    def leaky_relu_forward(self, x, slope):
        x = self._c(x)
        y = self.xp.empty_like(x)
        self.launcher.launch("leaky_relu_forward", x.dtype, x, y, x.size, float(slope))
        return y

    def leaky_relu_backward(self, dy, x, slope):
        dy, x = self._c(dy), self._c(x)
        dx = self.xp.empty_like(dy)
        self.launcher.launch("leaky_relu_backward", dy.dtype, dy, x, dx, dy.size, float(slope))
        return dx

    # --- loss ----------------------------------------------------------------------------

    def softmax_xent_forward(self, logits, labels):
        logits = self._c(logits)
        n, k = logits.shape
        probs = self.xp.empty_like(logits)
        loss = self.xp.empty(n, dtype=logits.dtype)
        self.launcher.launch("softmax_xent_forward", logits.dtype, logits, self._labels(labels), probs, loss, n, k)
        return loss, probs

    def softmax_xent_backward(self, probs, labels, scale: float):
        probs = self._c(probs)
        n, k = probs.shape
        d = self.xp.empty_like(probs)
        self.launcher.launch("softmax_xent_backward", probs.dtype, probs, self._labels(labels), d, n, k, float(scale))
        return d

    def _labels(self, labels):
        return self._c(self.xp.asarray(labels).astype(numpy.int32, copy=False))

    # --- optimizer updates ---------------------------------------------------------------

    def sgd_update(self, param, grad, velocity, lr, momentum, weight_decay, nesterov):
        self.launcher.launch("sgd_update", param.dtype, param, self._c(grad), velocity, param.size,
                             float(lr), float(momentum), float(weight_decay), int(bool(nesterov)))

    def adam_update(self, param, grad, m, v, lr, beta1, beta2, eps, weight_decay, bias_correction1,
                    bias_correction2):
        self.launcher.launch("adam_update", param.dtype, param, self._c(grad), m, v, param.size, float(lr),
                             float(beta1), float(beta2), float(eps), float(weight_decay),
                             float(bias_correction1), float(bias_correction2))

    def adamw_update(self, param, grad, m, v, lr, beta1, beta2, eps, decay, bias_correction1, bias_correction2):
        self.launcher.launch("adamw_update", param.dtype, param, self._c(grad), m, v, param.size, float(lr),
                             float(beta1), float(beta2), float(eps), float(decay), float(bias_correction1),
                             float(bias_correction2))


def _on_device(op: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(op)  # keeps __wrapped__: ops.overrides() sees through the scope
    def run(self: CupyOps, *args: Any, **kwargs: Any) -> Any:
        with self._scope():
            return op(self, *args, **kwargs)
    return run


for _name in OPS:
    setattr(CupyOps, _name, _on_device(getattr(CupyOps, _name)))

_NO_SCOPE = contextlib.nullcontext()


class EmulatedOps(CupyOps):
    """The CupyOps code path with emu arrays and the kernel emulator: device "emu".

    Its ops take and return emu arrays (`dn.to_device(a, "emu")`); host NumPy arrays are
    refused as a GPU refuses them.

    check=True runs every launch in the emulator's checking mode (NaN-filled outputs, guard
    zones); small block/max_blocks make the grid-stride loops wrap.
    """

    name = "emu"

    def __init__(self, check: bool = False, block: int = 256, max_blocks: int = 65535):
        from ..emu_array import EMU
        from ..kernels.emulator import EmulatorLauncher

        launcher = EmulatorLauncher(block=block, max_blocks=max_blocks, check=check, device_arrays=True)
        super().__init__(launcher=launcher, xp=EMU)

    def _scope(self) -> Any:
        return _NO_SCOPE
