"""The GPU tables' matrix products, and their numerics policy (TF32).

Every product of CupyOps (convolution forward, input and weight gradients; linear forward and
backward) runs here, on 2-D operands that are C- or F-contiguous views: cuBLAS reads a
transposed view through its transpose flag, so CuPy makes no hidden copy of an operand (CuPy's
3-D `matmul` copies every operand that is not C-contiguous, and a conv weight gradient's
transposed column matrix is the largest array of a step). Grouped convolutions run one 2-D
product per group, each on a contiguous block of rows.

TF32: off for every float32 product by default, so the GPU's layers agree with each other and
with the reference to float32 rounding. `set_tf32(True)` (or `DUALNET_TF32=1` in the
environment) turns it on for every product alike; CuPy's own `CUPY_TF32` is not read for
dualnet's products, and CuPy's setting is restored after each product, so code outside dualnet
keeps its own. Float64 products never use TF32.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy

from .geometry import ConvGeometry
from .reference import ReferenceOps

#: the environment variable that turns TF32 on for dualnet's float32 GPU products
TF32_ENV = "DUALNET_TF32"

_STATE = {"tf32": os.environ.get(TF32_ENV, "") not in ("", "0")}


def set_tf32(enabled: bool) -> None:
    """Use TF32 tensor cores for dualnet's float32 GPU products (True), or exact float32 (False,
    the default). TF32 keeps 10 mantissa bits of each operand: products differ from the reference
    by about 1e-3 relative, so device-agreement tolerances for float32 no longer hold."""
    if not isinstance(enabled, bool):
        raise TypeError(f"set_tf32: expected True or False, got {enabled!r}")
    _STATE["tf32"] = enabled


def tf32_enabled() -> bool:
    """Whether dualnet's float32 GPU products use TF32 (see set_tf32)."""
    return _STATE["tf32"]


#: cublasMath_t's CUBLAS_TF32_TENSOR_OP_MATH (cublas_api.h; CuPy names only the older modes)
_CUBLAS_TF32_MATH = 3


def _cublas_gemm(xp: Any) -> Callable[[Any, Any, Any, bool], None] | None:
    """out += a @ b as one cuBLAS GEMM with beta = 1 through `xp.cublas.gemm` (CuPy's BLAS
    wrappers, cupy/cublas.py: a C-contiguous out is computed as out.T += b.T @ a.T and C- or
    F-contiguous operands are read through cuBLAS's transpose flags, so nothing is copied); None
    where the array module has none (emu: ProductOps._mm_add adds the product instead).

    TF32 follows dualnet's policy through the cuBLAS handle's math mode, restored after the call:
    cublas.gemm runs cublas<t>gemm, which reads the math mode, not CuPy's compute-type switch. A
    stand-in cupy (tests/standins) brings its own model of the math-mode calls as `cublas.lib`."""
    blas = getattr(xp, "cublas", None)
    if blas is None or not hasattr(blas, "gemm"):
        return None
    try:
        from cupy_backends.cuda.libs import cublas as lib
    except ImportError:  # a stand-in cupy models the math-mode calls itself
        lib = blas.lib
    device = xp.cuda.device

    def gemm(a: Any, b: Any, out: Any, tf32: bool) -> None:
        handle = device.get_cublas_handle()
        have = lib.getMathMode(handle)
        want = _CUBLAS_TF32_MATH if tf32 else lib.CUBLAS_DEFAULT_MATH
        if have != want:
            lib.setMathMode(handle, want)
        try:
            blas.gemm("N", "N", a, b, out=out, alpha=1.0, beta=1.0)
        finally:
            if have != want:
                lib.setMathMode(handle, have)
    return gemm


def _linalg(xp: Any) -> Any:
    """CuPy's compute-type switch (cupy._core._routines_linalg), None where the array module
    has none (emu)."""
    core = getattr(xp, "_core", None)
    return getattr(core, "_routines_linalg", None) if core is not None else None


class ProductOps(ReferenceOps):
    """The products of the GPU table (CupyOps subclasses it; `self.xp` is CuPy or emu)."""

    def _mm(self, a: Any, b: Any, out: Any = None) -> Any:
        """a @ b for 2-D a (m, k), b (k, n), each C- or F-contiguous; into `out` (m, n, C-contiguous)
        when given. Runs with the TF32 policy above."""
        linalg = _linalg(self.xp)
        if linalg is None or a.dtype != numpy.float32:
            return self.xp.matmul(a, b, out=out)
        want = linalg.COMPUTE_TYPE_TF32 if _STATE["tf32"] else linalg.COMPUTE_TYPE_DEFAULT
        have = linalg.get_compute_type(numpy.float32)
        if have == want:
            return self.xp.matmul(a, b, out=out)
        linalg.set_compute_type(numpy.float32, want)
        try:
            return self.xp.matmul(a, b, out=out)
        finally:
            linalg.set_compute_type(numpy.float32, have)

    def _mm_add(self, a: Any, b: Any, out: Any) -> None:
        """out += a @ b for 2-D a (m, k), b (k, n), each C- or F-contiguous, into out (m, n,
        C-contiguous). On CuPy one cuBLAS GEMM with beta = 1 (_cublas_gemm: cupy.cublas.gemm), so a
        gradient is added where the product is written (no product array, no separate add);
        without it (emu) the product then the add, which is what cuBLAS computes with beta = 1 for
        the same product (C = acc + C, one rounding). Runs with the TF32 policy above."""
        cache = self.__dict__
        if "_gemm" not in cache:
            cache["_gemm"] = _cublas_gemm(self.xp)
        gemm = cache["_gemm"]
        if gemm is None:
            out += self._mm(a, b)
            return
        gemm(a, b, out, bool(a.dtype == numpy.float32 and _STATE["tf32"]))

    def _add_channel_sums(self, x: Any, n: int, c: int, inner: int, out: Any) -> None:
        """out (c,) += the sums of x viewed as (n, c, inner) over n and inner: a bias gradient
        added in. CupyOps runs its deterministic block-per-channel kernel (grads.cu) instead."""
        out += x.reshape(n, c, inner).sum(axis=(0, 2))

    def _blocks(self, pairs: list[tuple[Any, Any]], rows: int, cols: int, dtype: Any) -> Any:
        """Stack the products of `pairs` (one (a, b) per group, each a @ b of `rows // len(pairs)`
        rows) into one (rows, cols) array, each written in place (no concatenation)."""
        if len(pairs) == 1:
            return self._mm(*pairs[0])
        out = self.xp.empty((rows, cols), dtype=dtype)
        step = rows // len(pairs)
        for g, (a, b) in enumerate(pairs):
            self._mm(a, b, out=out[g * step:(g + 1) * step])
        return out

    # --- convolution ---------------------------------------------------------------------

    def conv2d_forward(self, x, weight, bias, geom: ConvGeometry, groups: int, act: str | None = None):
        """As ReferenceOps.conv2d_forward: y = W (o, k) @ cols (k, n*out_h*out_w) per group, then the
        bias, activation and channel-major -> (n, o, ...) transpose in one kernel (bias_act); with
        neither bias nor activation, y is a channel-major view (no launch after the product)."""
        n, c = x.shape[0], x.shape[1]
        o = weight.shape[0]
        hw = geom.out_h * geom.out_w
        cols = self.im2col(x, geom)
        k = (c // groups) * geom.kh * geom.kw
        cols2 = cols.reshape(groups * k, n * hw)
        w2 = weight.reshape(o, k)
        og = o // groups
        y = self._blocks([(w2[g * og:(g + 1) * og], cols2[g * k:(g + 1) * k]) for g in range(groups)],
                         o, n * hw, x.dtype)
        if bias is None and act is None:
            # nothing to add or clip: the product's channel-major layout, seen as (n, o, ...) through
            # a transposed view (batch norm, what follows a bias-free convolution, reads it through
            # strides; a consumer that needs C order makes the copy bias_act would have made)
            return y.reshape(o, n, geom.out_h, geom.out_w).transpose(1, 0, 2, 3), cols
        y = self.bias_act(y.reshape(o, n, hw), bias, act, channel_major=True)
        return y.reshape(n, o, geom.out_h, geom.out_w), cols

    def conv2d_backward(self, dy, saved, weight, x_shape, geom: ConvGeometry, groups: int, wgrad, bgrad,
                        need_dx: bool = True, dx_add=None):
        """As ReferenceOps.conv2d_backward. dy is made channel-major once (a copy unless dy is
        already a channel-major view: both products read it as (o, n*out_h*out_w)); the weight
        gradient is one product per group added into wgrad (beta = 1), reading the column matrix
        through a transposed view; the input gradient (dx_add summed in) is _conv_input_grad's."""
        cols = saved
        n, c = x_shape[0], x_shape[1]
        o = weight.shape[0]
        hw = geom.out_h * geom.out_w
        k = (c // groups) * geom.kh * geom.kw
        og = o // groups
        dy_cm = self.xp.ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(o, n * hw)
        cols2 = cols.reshape(groups * k, n * hw)
        if wgrad is not None:
            w2 = wgrad.reshape(o, k)
            for g in range(groups):
                self._mm_add(dy_cm[g * og:(g + 1) * og], cols2[g * k:(g + 1) * k].T, w2[g * og:(g + 1) * og])
        if bgrad is not None:
            self._add_channel_sums(dy_cm, 1, o, n * hw, bgrad)
        if not need_dx:
            return None
        return self._conv_input_grad(dy_cm, weight, x_shape, geom, groups, dx_add)

    def _conv_input_grad(self, dy_cm, weight, x_shape, geom: ConvGeometry, groups: int, dx_add):
        """dx (n, c, h, w) (+ dx_add) from dy_cm (o, n*out_h*out_w): the column path, readable and
        general: the column gradient W.T @ dy per group, then col2im, then the addend added in.
        CupyOps runs groups == 1 as one implicit-GEMM kernel instead (conv_dgrad.cu)."""
        n, c = x_shape[0], x_shape[1]
        o = weight.shape[0]
        k = (c // groups) * geom.kh * geom.kw
        og = o // groups
        w2 = weight.reshape(o, k)
        dcols = self._blocks([(w2[g * og:(g + 1) * og].T, dy_cm[g * og:(g + 1) * og]) for g in range(groups)],
                             groups * k, dy_cm.shape[1], dy_cm.dtype)
        dx = self.col2im(dcols.reshape(c, geom.kh, geom.kw, n, geom.out_h, geom.out_w), x_shape, geom)
        if dx_add is not None:
            dx += dx_add
        return dx

    # --- linear --------------------------------------------------------------------------

    def linear_forward(self, x, weight, bias, act: str | None = None):
        """As ReferenceOps.linear_forward; weight.T is an F-contiguous view (no copy)."""
        y = self._mm(x, weight.T)
        n, o = y.shape
        return self.bias_act(y.reshape(n, o, 1), bias, act, channel_major=False).reshape(n, o)

    def linear_backward(self, dy, x, weight, wgrad, bgrad, need_dx: bool = True):
        """As ReferenceOps.linear_backward: the weight gradient is one product added into wgrad
        (beta = 1), the bias gradient's sums added into bgrad."""
        dx = self._mm(dy, weight) if need_dx else None
        if wgrad is not None:
            self._mm_add(dy.T, x, wgrad)
        if bgrad is not None:
            self._add_channel_sums(dy, dy.shape[0], dy.shape[1], 1, bgrad)
        return dx
