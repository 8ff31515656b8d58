"""CpuOps: the op table of device "cpu", ReferenceOps made fast on the hot paths of training.

ReferenceOps stays the readable reference (and the parent of the GPU ops); CpuOps computes the same
functions with fewer passes over memory, which is what a CPU step is short of: the matrix
products are a minority of its time. tests/ops/test_cpu.py holds the two to
each other on drawn geometries. What changes (profile and figures: benchmarks/RESULTS.md):

- Batch-last buffers. im2col writes cols as (c*kh*kw, out_h*out_w*n), the batch innermost, so
  every kernel offset is one copy of long contiguous runs (the reference's (..., n, out_h,
  out_w) order copies rows of out_w values); the product then comes out as (o, out_h, out_w, n)
  and is returned as a transposed *view* of shape (n, o, out_h, out_w). Values and shapes are the
  reference's; only strides differ, which NumPy hides, and the next op reads the buffer as is.
  Batch norm, ReLU, residual sums, global pooling (cpu_norm.py) and col2im (cpu_layout.py) keep
  that layout, so a residual network never transposes between its convolutions.
- The bias rides in the product: cols gets a row of ones and the weight matrix the bias as a
  column, so the weight-gradient product yields the bias gradient as its last column.
- Max pooling whose windows tile the input copies each window offset into one contiguous plane,
  reduces across planes and keeps boolean first-maximum masks; backward is one multiply per
  offset. The first-maximum rule is the reference's, so ties (common: MNIST's blank borders give
  equal conv outputs) still send the gradient to exactly one input.
- conv + ReLU + max pooling fused (the ConvReLUMaxPool step): ReLU commutes with max, so it is
  applied to the pooled output only, and its gradient mask is (pooled > 0).
- First layers skip their input gradient (need_dx=False); updates work in place; and glibc is
  asked to keep freed buffers (see keep_freed_memory).

Every geometry the fast paths do not cover (groups > 1, overlapping or padded pooling) falls
through to ReferenceOps unchanged (the reference's composition, for the fused op).
"""

from __future__ import annotations

import ctypes
import os
import sys

import numpy
from numpy.lib.stride_tricks import as_strided

from . import cpu_conv, cpu_workers
from .cpu_inference import inference_chunk, max_tiles
from .cpu_layout import batch_first as _batch_first
from .cpu_layout import batch_last as _batch_last
from .cpu_layout import col2im_batch_last, is_batch_last, relu_in_place
from .cpu_layout import window_view as _window_view
from .cpu_norm import CpuNormOps
from .geometry import ConvGeometry, PoolGeometry
from .reference import Geometry


class _BatchLastCols:
    """What CpuOps.conv2d_forward keeps for backward: cols (c*kh*kw [+1 row of ones], out_h*out_w*n)."""

    __slots__ = ("cols",)

    def __init__(self, cols):
        self.cols = cols


class _PoolMask:
    """What tiling max pooling keeps for backward: first[t] (c, out_h, out_w, n) is True where
    window offset t (row-major) holds the window's first maximum; exactly one t per window."""

    __slots__ = ("first",)

    def __init__(self, first):
        self.first = first


def _tile_view(a, kh: int, kw: int, writeable: bool = False):
    """a (c, kh*oh, kw*ow, n) -> view (kh, kw, c, oh, ow, n): element [i, j, ..., y, x, :] is
    a[..., kh*y + i, kw*x + j, :], so offset (i, j) of every tiling window is one plane. The
    windows do not overlap, so a writeable view writes each element of `a` exactly once."""
    c, h, w, n = a.shape
    s_c, s_h, s_w, s_n = a.strides
    return as_strided(a, shape=(kh, kw, c, h // kh, w // kw, n),
                      strides=(s_h, s_w, s_c, kh * s_h, kw * s_w, s_n), writeable=writeable)


def _pool_planes(a, kh: int, kw: int):
    """Max pooling of a (c, kh*oh, kw*ow, n) by tiling windows: (best (c, oh, ow, n), first
    (kh*kw, c, oh, ow, n) bool, True at each window's first maximum).

    One contiguous plane per window offset (a copy): reductions across planes are fast, strided
    comparisons and masked copies are not."""
    c, h, w, n = a.shape
    planes = numpy.ascontiguousarray(_tile_view(a, kh, kw)).reshape(kh * kw, c, h // kh, w // kw, n)
    best = planes.max(axis=0)
    first = planes == best
    _keep_first(first)
    return best, first


def _keep_first(planes) -> None:
    """In place: along axis 0 (the window offsets, row-major), keep only the first True of each
    window: the reference's tie rule, so a tie sends the gradient to exactly one input."""
    taken = planes[0].copy()
    for t in range(1, planes.shape[0]):
        numpy.logical_and(planes[t], numpy.logical_not(taken), out=planes[t])
        if t + 1 < planes.shape[0]:
            numpy.logical_or(taken, planes[t], out=taken)


class _ConvPoolCache:
    """What the fused conv + ReLU + max pooling keeps for backward: its padded batch-last input
    (cols is rebuilt from it), the first-maximum masks (pkh*pkw, o, oh2, ow2, n) and the ReLU
    mask (o, oh2, ow2, n)."""

    __slots__ = ("padded", "x_shape", "has_bias", "first", "positive", "geom", "pool_geom")

    def __init__(self, padded, x_shape, has_bias, first, positive, geom, pool_geom):
        self.padded, self.x_shape, self.has_bias = padded, x_shape, has_bias
        self.first, self.positive, self.geom, self.pool_geom = first, positive, geom, pool_geom


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed buffers for reuse instead of returning them to the kernel.

    A training step allocates and frees the same megabyte-sized buffers every step; by default
    glibc unmaps or trims them each time, and every step then pays page faults to get them back
    (measured on a LeNet-5 epoch: 32,000 minor faults instead of 9,000, and 6-7% of the epoch's
    time in alternating runs). Buffers up to 32 MiB now come from the heap, and up to 128 MiB of
    free heap is kept. Peak memory is unchanged: it only stops shrinking between steps. Returns
    whether the setting took (glibc only; elsewhere a no-op). DUALNET_KEEP_FREED_MEMORY=0 turns
    it off.
    """
    if os.environ.get("DUALNET_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 128 << 20))


class CpuOps(CpuNormOps):
    """ReferenceOps with fused, copy-free fast paths for the shapes a CNN trains with."""

    name = "cpu"
    xp = numpy
    #: plain convolutions by blocks of output rows (cpu_conv.py) instead of whole cols
    conv_blocks = True

    def __init__(self) -> None:
        self.keeps_freed_memory = keep_freed_memory()
        cpu_workers.take_blas_threads()  # no OpenBLAS thread left to spin (cpu_workers.py says why)

    # --- convolution ---------------------------------------------------------------------

    @staticmethod
    def _padded(x, geom: Geometry):
        """x: (n, c, h, w) -> (c, H, W, n) batch-last, zero-padded to geom.padded_hw (a view if
        no padding): every window lies inside it, so the strided window view never reads past it."""
        ph, pw = geom.ph, geom.pw
        n, c, h, w = x.shape
        big = geom.padded_hw(h, w)
        if big == (h, w):
            return _batch_last(x)
        padded = numpy.zeros((c, *big, n), dtype=x.dtype)
        padded[:, ph:ph + h, pw:pw + w] = _batch_last(x)
        return padded

    @staticmethod
    def _im2col(padded, geom: Geometry, bias_row: bool):
        """padded (c, H, W, n) from _padded -> cols (c*kh*kw [+1 row of ones], out_h*out_w*n),
        batch innermost, so that each kernel offset is a copy of long contiguous runs."""
        c, n = padded.shape[0], padded.shape[3]
        k = c * geom.kh * geom.kw
        cols = numpy.empty((k + bias_row, geom.out_h * geom.out_w * n), dtype=padded.dtype)
        numpy.copyto(cols[:k].reshape(c, geom.kh, geom.kw, geom.out_h, geom.out_w, n), _window_view(padded, geom))
        if bias_row:
            cols[k] = 1
        return cols

    @staticmethod
    def _col2im(dcols, x_shape, geom: Geometry):
        """Adjoint of _im2col (without the ones row): (c*kh*kw, out_h*out_w*n) -> (n, c, h, w) view
        of a contiguous batch-last buffer (ops/cpu_layout.py)."""
        return col2im_batch_last(dcols, x_shape, geom)

    @staticmethod
    def _wmat(weight, bias):
        """(o, k [+1]): the weight matrix, with the bias as its last column when given."""
        o = weight.shape[0]
        wmat = weight.reshape(o, -1)
        return wmat if bias is None else numpy.concatenate([wmat, bias.reshape(o, 1)], axis=1)

    def _product(self, weight, bias, cols):
        """(o, k [+1]) @ cols: with a bias, it rides along as the column against the ones row."""
        return numpy.matmul(self._wmat(weight, bias), cols)

    @staticmethod
    def _add_weight_grads(dym, cols, weight, wgrad, bgrad) -> None:
        """dym (o, out_h*out_w*n): dweight and dbias in one product (the bias gradient is the
        column of the ones row), added into wgrad and bgrad (each skipped when None)."""
        if wgrad is None and bgrad is None:
            return
        grads = numpy.matmul(dym, cols.T)
        k = weight[0].size
        if wgrad is not None:
            wgrad += grads[:, :k].reshape(weight.shape)
        if bgrad is not None:
            bgrad += grads[:, k]

    def conv2d_forward(self, x, weight, bias, geom: ConvGeometry, groups: int, act: str | None = None):
        """As ReferenceOps.conv2d_forward; y is a view of a batch-last buffer. With conv_blocks
        (cpu_conv.py) `saved` is the padded input, else the cols (c*kh*kw [+1 row of ones if
        bias], out_h*out_w*n)."""
        if groups != 1:
            return super().conv2d_forward(x, weight, bias, geom, groups, act)
        if self.conv_blocks:
            wmat = self._wmat(weight, bias)
            x_rows = _batch_last(x) if is_batch_last(x) else None
            return cpu_conv.forward(self._padded(x, geom), x.shape, wmat, geom, act, bias is not None, x_rows)
        cols = self._im2col(self._padded(x, geom), geom, bias is not None)
        y = self._product(weight, bias, cols)
        if act == "relu":
            relu_in_place(y)
        return _batch_first(y.reshape(weight.shape[0], geom.out_h, geom.out_w, x.shape[0])), _BatchLastCols(cols)

    def conv2d_backward(self, dy, saved, weight, x_shape, geom: ConvGeometry, groups: int, wgrad, bgrad,
                        need_dx: bool = True, dx_add=None):
        """As ReferenceOps.conv2d_backward (the reference's `saved` when groups > 1 went there); dx_add
        is added into the fresh dx in place (one rounding per element, as dx + dx_add)."""
        if not isinstance(saved, (cpu_conv.ConvInput, _BatchLastCols)):
            return super().conv2d_backward(dy, saved, weight, x_shape, geom, groups, wgrad, bgrad, need_dx, dx_add)
        dx = self._conv2d_backward(dy, saved, weight, x_shape, geom, wgrad, bgrad, need_dx)
        if dx is not None and dx_add is not None:
            numpy.add(dx, dx_add, out=dx)
        return dx

    def _conv2d_backward(self, dy, saved, weight, x_shape, geom: ConvGeometry, wgrad, bgrad, need_dx: bool):
        """conv2d_backward of this table's own `saved` (groups == 1), without the addend."""
        o = weight.shape[0]
        if isinstance(saved, cpu_conv.ConvInput):
            dy_rows = numpy.ascontiguousarray(_batch_last(dy))
            dx, grads = cpu_conv.backward(dy_rows, saved, weight.reshape(o, -1), geom, need_dx)
            k = weight[0].size
            if wgrad is not None:
                wgrad += grads[:, :k].reshape(weight.shape)
            if bgrad is not None:
                bgrad += grads[:, k]
            return dx
        cols = saved.cols
        dym = numpy.ascontiguousarray(_batch_last(dy)).reshape(o, -1)
        self._add_weight_grads(dym, cols, weight, wgrad, bgrad)
        if not need_dx:
            return None
        return self._col2im(numpy.matmul(weight.reshape(o, -1).T, dym), x_shape, geom)

    # --- convolution + ReLU + max pooling, fused -------------------------------------------

    def conv_relu_maxpool_forward(self, x, weight, bias, geom: ConvGeometry, pool_geom: PoolGeometry,
                                  groups: int = 1):
        """maxpool(relu(conv2d(x))) fast for groups == 1 and pooling windows that tile the conv
        output (the reference's composition elsewhere): (y (n, o, out_h / pkh, out_w / pkw), saved).

        ReLU is monotone, so it commutes with max: pooling first leaves the ReLU a fraction of
        the work, and its gradient mask is (pooled > 0); nor is the full-size ReLU output ever
        written. The first-maximum rule of pooling is unchanged, so ties route as the reference.
        """
        out_h, out_w = geom.out_h, geom.out_w
        pkh, pkw = pool_geom.kh, pool_geom.kw
        if groups != 1 or not pool_geom.tiles(out_h, out_w):
            return super().conv_relu_maxpool_forward(x, weight, bias, geom, pool_geom, groups)
        n = x.shape[0]
        o = weight.shape[0]
        padded = self._padded(x, geom)
        cols = self._im2col(padded, geom, bias is not None)
        z = self._product(weight, bias, cols).reshape(o, out_h, out_w, n)
        best, first = _pool_planes(z, pkh, pkw)
        positive = best > 0
        relu_in_place(best)
        # the input, not cols, is kept: rebuilding cols in backward, right before the weight-gradient
        # product reads it, costs less than that product reading a cols the rest of the step
        # has pushed out of the caches (measured 4% of a step), and holds far less memory
        cache = _ConvPoolCache(padded, tuple(x.shape), bias is not None, first, positive, geom, pool_geom)
        return _batch_first(best), cache

    def conv_relu_maxpool_backward(self, dy, cache, weight, wgrad, bgrad, need_dx: bool = True):
        """dy: (n, o, oh2, ow2) -> dx (n, c, h, w) or None; the parameter gradients added into wgrad, bgrad."""
        if not isinstance(cache, _ConvPoolCache):
            return super().conv_relu_maxpool_backward(dy, cache, weight, wgrad, bgrad, need_dx)
        out_h, out_w = cache.geom.out_h, cache.geom.out_w
        pkh, pkw = cache.pool_geom.kh, cache.pool_geom.kw
        n = cache.x_shape[0]
        o = weight.shape[0]
        dyb = numpy.multiply(_batch_last(dy), cache.positive)  # the ReLU's gradient
        dz = numpy.empty((o, out_h, out_w, n), dtype=dy.dtype)  # the windows tile it: all written
        # each window's gradient to its first maximum
        numpy.multiply(cache.first.reshape(pkh, pkw, o, out_h // pkh, out_w // pkw, n), dyb,
                       out=_tile_view(dz, pkh, pkw, writeable=True))
        dzm = dz.reshape(o, -1)
        cols = self._im2col(cache.padded, cache.geom, cache.has_bias)
        self._add_weight_grads(dzm, cols, weight, wgrad, bgrad)
        del cols
        if not need_dx:
            return None
        return self._col2im(numpy.matmul(weight.reshape(o, -1).T, dzm), cache.x_shape, cache.geom)

    # --- eval mode ---------------------------------------------------------------------------

    def conv_relu_maxpool_inference(self, x, weight, bias, geom: ConvGeometry, pool_geom: PoolGeometry,
                                    groups: int = 1):
        """maxpool(relu(conv2d(x))) without what backward needs (no contiguous planes, no
        first-maximum masks, nothing kept): the same values as conv_relu_maxpool_forward's."""
        out_h, out_w = geom.out_h, geom.out_w
        if groups != 1 or not pool_geom.tiles(out_h, out_w):
            return super().conv_relu_maxpool_inference(x, weight, bias, geom, pool_geom, groups)
        o, n = weight.shape[0], x.shape[0]
        cols = self._im2col(self._padded(x, geom), geom, bias is not None)
        z = self._product(weight, bias, cols).reshape(o, out_h, out_w, n)
        del cols
        best = max_tiles(z, pool_geom.kh, pool_geom.kw)
        relu_in_place(best)
        return _batch_first(best)

    def inference_in_chunks(self, run, x):
        """run(x) chunk by chunk of inference_chunk(x) images, the outputs concatenated: a
        chunk's im2col buffers stay in the caches, a whole large batch's do not (measured in
        benchmarks/RESULTS.md: batch 1000 at half the images/s of batch 64 unchunked)."""
        if getattr(x, "ndim", 0) < 2:
            return run(x)
        chunk = inference_chunk(x)
        if len(x) <= chunk:
            return run(x)
        return numpy.concatenate([run(x[i:i + chunk]) for i in range(0, len(x), chunk)])

    # --- pooling -------------------------------------------------------------------------

    def maxpool_forward(self, x, geom: PoolGeometry):
        """As ReferenceOps.maxpool_forward; for tiling windows `saved` is a _PoolMask."""
        if not geom.tiles(x.shape[2], x.shape[3]):
            return super().maxpool_forward(x, geom)
        best, first = _pool_planes(_batch_last(x), geom.kh, geom.kw)
        return _batch_first(best), _PoolMask(first)

    def maxpool_backward(self, dy, saved, x_shape, geom: PoolGeometry):
        if not isinstance(saved, _PoolMask):
            return super().maxpool_backward(dy, saved, x_shape, geom)
        n, c, h, w = x_shape
        kh, kw = geom.kh, geom.kw
        argmax = saved
        dx = numpy.empty((c, h, w, n), dtype=dy.dtype)  # the offsets tile it: every element is written
        numpy.multiply(argmax.first.reshape(kh, kw, c, h // kh, w // kw, n), _batch_last(dy),
                       out=_tile_view(dx, kh, kw, writeable=True))
        return _batch_first(dx)

    # --- activations ---------------------------------------------------------------------

    def relu_backward(self, dy, y):
        return numpy.multiply(dy, y > 0)

    # --- loss ----------------------------------------------------------------------------

    def softmax_xent_forward(self, logits, labels):
        """As ReferenceOps.softmax_xent_forward, in fewer passes: the probabilities are normalised in
        place and the picked logit is read from the shifted logits."""
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = numpy.exp(shifted)
        total = probs.sum(axis=1, keepdims=True)
        probs /= total
        picked = shifted[numpy.arange(len(labels)), labels]
        return numpy.log(total[:, 0]) - picked, probs

    # --- linear --------------------------------------------------------------------------

    def linear_forward(self, x, weight, bias, act: str | None = None):
        y = numpy.matmul(x, weight.T)
        if bias is not None:
            y += bias
        if act == "relu":
            relu_in_place(y)
        return y

    # --- optimizer -----------------------------------------------------------------------

    def sgd_update(self, param, grad, velocity, lr: float, momentum: float, weight_decay: float, nesterov: bool):
        """As ReferenceOps.sgd_update, with every step in place (one temporary at most)."""
        dtype = param.dtype.type
        g = grad
        if weight_decay:
            g = param * dtype(weight_decay)
            g += grad
        if momentum:
            velocity *= dtype(momentum)
            velocity += g
            if nesterov:
                step = velocity * dtype(momentum)
                step += g
            else:
                step = velocity
        else:
            step = g
        param -= step * dtype(lr)
