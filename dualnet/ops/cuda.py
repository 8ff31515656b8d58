"""Kernel-backed ops: CupyOps for "gpu", EmulatedOps for "emu".

CupyOps inherits every op from ReferenceOps (written against `self.xp`, here CuPy) and overrides
only those with a hand-written CUDA kernel: im2col, col2im, pooling (global average pooling too),
bias + activation, ReLU backward, leaky ReLU, batch normalization, softmax cross-entropy and the
optimizer updates. Matrix products stay `xp.matmul`
(cuBLAS; CuPy leaves TF32 off unless CUPY_TF32=1 is set).

EmulatedOps is the same class with the emu array module as `xp` (dualnet/emu_array.py: NumPy
buffers behind CuPy's rules, so a host leak fails there as it would on a GPU) and the kernel
emulator as launcher: the whole GPU code path, kernels included, running on the CPU where the
NumPy reference can check it.

CuPy allocates and launches on its *current* device: every op of CupyOps, inherited ones
included, runs inside `cupy.cuda.Device(device_id)`, so an op on "gpu:N" never allocates on
another device whatever the caller's current device is.

The fused conv + ReLU + max pooling is the reference's composition here: its three parts
each run as kernels (bias + ReLU, max pooling, ReLU backward).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import numpy

from . import OPS
from .geometry import PoolGeometry
from .reference import Geometry, ReferenceOps

_ACT = {None: 0, "relu": 1}


class CupyOps(ReferenceOps):
    """Ops on CUDA device `device_id` through CuPy and the kernels in dualnet/kernels."""

    name = "cupy"

    def __init__(self, device_id: int = 0, launcher: Any = None, xp: Any = None):
        if xp is None:
            import cupy

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

    # --- pooling (no dilation: the kernels take kh, kw, sh, sw, ph, pw, out_h, out_w) ----

    def maxpool_forward(self, x, geom: PoolGeometry):
        x = self._c(x)
        n, c, h, w = x.shape
        y = self.xp.empty((n, c, geom.out_h, geom.out_w), dtype=x.dtype)
        argmax = self.xp.empty((n, c, geom.out_h, geom.out_w), dtype=numpy.int32)
        self.launcher.launch("maxpool_forward", x.dtype, x, y, argmax, n, c, h, w, *geom.kernel_args())
        return y, argmax

    def maxpool_backward(self, dy, saved, x_shape, geom: PoolGeometry):
        dy = self._c(dy)
        n, c, h, w = x_shape
        dx = self.xp.empty(x_shape, dtype=dy.dtype)
        self.launcher.launch("maxpool_backward", dy.dtype, dy, self._c(saved), dx, n, c, h, w, *geom.kernel_args())
        return dx

    def avgpool_forward(self, x, geom: PoolGeometry):
        x = self._c(x)
        n, c, h, w = x.shape
        y = self.xp.empty((n, c, geom.out_h, geom.out_w), dtype=x.dtype)
        self.launcher.launch("avgpool_forward", x.dtype, x, y, n, c, h, w, *geom.kernel_args())
        return y

    def avgpool_backward(self, dy, x_shape, geom: PoolGeometry):
        dy = self._c(dy)
        n, c, h, w = x_shape
        dx = self.xp.empty(x_shape, dtype=dy.dtype)
        self.launcher.launch("avgpool_backward", dy.dtype, dy, dx, n, c, h, w, *geom.kernel_args())
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

    # --- batch normalization (x viewed as (n, c, inner); norm.cu) ------------------------

    @staticmethod
    def _nci(x) -> tuple[int, int, int]:
        return int(x.shape[0]), int(x.shape[1]), int(x.size // (x.shape[0] * x.shape[1]))

    def _affine(self, weight, bias, c: int, dtype):
        """weight and bias, or ones and zeros for batch norm without an affine map."""
        xp = self.xp
        return (xp.ones(c, dtype=dtype) if weight is None else self._c(weight),
                xp.zeros(c, dtype=dtype) if bias is None else self._c(bias))

    def batchnorm_forward(self, x, weight, bias, running_mean, running_var, eps, momentum):
        """As ReferenceOps.batchnorm_forward; saved is (x, mean, inv_std, scale), not xhat."""
        xp = self.xp
        x = self._c(x)
        n, c, inner = self._nci(x)
        dt = x.dtype
        w, b = self._affine(weight, bias, c, dt)
        row_mean, row_m2 = xp.empty((n, c), dtype=dt), xp.empty((n, c), dtype=dt)
        self.launcher.launch("bn_row_moments", dt, x, row_mean, row_m2, n, c, inner)
        mean, inv_std, scale = (xp.empty(c, dtype=dt) for _ in range(3))
        self.launcher.launch("bn_channel_stats", dt, row_mean, row_m2, w, running_mean, running_var, mean,
                             inv_std, scale, n, c, inner, float(eps), float(momentum))
        y = xp.empty_like(x)
        self.launcher.launch("bn_apply", dt, x, mean, scale, b, y, n, c, inner)
        return y, (x, mean, inv_std, scale)

    def batchnorm_eval(self, x, weight, bias, running_mean, running_var, eps):
        xp = self.xp
        x = self._c(x)
        n, c, inner = self._nci(x)
        w, b = self._affine(weight, bias, c, x.dtype)
        scale = self._c(w / xp.sqrt(running_var + x.dtype.type(eps)))
        y = xp.empty_like(x)
        self.launcher.launch("bn_apply", x.dtype, x, self._c(running_mean), scale, b, y, n, c, inner)
        return y

    def batchnorm_backward(self, dy, saved, weight, need_dx=True):
        xp = self.xp
        x, mean, inv_std, scale = saved
        dy = self._c(dy)
        n, c, inner = self._nci(dy)
        dt = dy.dtype
        row_dy, row_dyx = xp.empty((n, c), dtype=dt), xp.empty((n, c), dtype=dt)
        self.launcher.launch("bn_row_grads", dt, dy, x, mean, row_dy, row_dyx, n, c, inner)
        dweight, dbias = xp.empty(c, dtype=dt), xp.empty(c, dtype=dt)
        self.launcher.launch("bn_channel_grads", dt, row_dy, row_dyx, inv_std, dweight, dbias, n, c)
        if not need_dx:
            return None, dweight, dbias
        dx = xp.empty_like(dy)
        self.launcher.launch("bn_input_grad", dt, dy, x, mean, inv_std, scale, dweight, dbias, dx, n, c, inner)
        return dx, dweight, dbias

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
            bias = self.xp.zeros(c, dtype=x.dtype)
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
