"""ReferenceOps: the reference math of every dualnet op, forward and backward (device "ref").

Everything here is written against `self.xp`, so the same code runs on NumPy (the truth, device
"ref") and on CuPy. `CpuOps` (ops/cpu.py) and `CupyOps` (ops/cuda.py) subclass it and override
only what a profile or a kernel makes faster; every op any layer calls is declared here, fused
ones included (as the plain composition of their parts), so no op is ever looked up by name.
Ops assume valid arguments: layers validate geometry and explain errors before calling in.

What a forward op hands to its own backward (`saved` below: cols, pooling indices, caches) is
private to the table that made it: a table may return its own objects there and recognise them
in its backward; callers only pass `saved` back to the same table, never look inside.

Layouts shared with the kernels (dualnet/kernels/*.cu):
  x     (n, c, h, w)                      images, C-contiguous
  cols  (c, kh, kw, n, out_h, out_w)      the reference's im2col columns; one GEMM covers the batch
  conv weight (o, c // groups, kh, kw)
Geometry is a Window (ops/geometry.py; ConvGeometry and PoolGeometry name the same type): fields
kh, kw, sh, sw, ph (leading), pw (leading), dh, dw, out_h, out_w, in the kernels' argument order.
"""

from __future__ import annotations

from typing import Any

import numpy

from .geometry import ConvGeometry, PoolGeometry
from .reference_fused import FusedOps
from .reference_layers import LayerOps
from .reference_training import TrainingOps

Geometry = ConvGeometry | PoolGeometry


class ReferenceOps(LayerOps, TrainingOps, FusedOps):
    """Reference ops. Subclasses set `xp` and override what they make faster."""

    name = "ref"
    xp: Any = numpy

    # --- helpers -------------------------------------------------------------------------

    def _windows(self, x, geom: Geometry, fill: float = 0.0):
        """Strided views of every kernel offset: returns (c, kh, kw, n, out_h, out_w).

        A loop over the kh*kw offsets, each a strided slice of the padded batch: no loop over
        pixels or images.
        """
        xp = self.xp
        kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w = geom
        n, c, h, w = x.shape
        big_h, big_w = geom.padded_hw(h, w)
        if (big_h, big_w) != (h, w):
            padded = xp.full((c, n, big_h, big_w), fill, dtype=x.dtype)
            padded[:, :, ph:ph + h, pw:pw + w] = x.transpose(1, 0, 2, 3)
        else:
            padded = x.transpose(1, 0, 2, 3)
        cols = xp.empty((c, kh, kw, n, out_h, out_w), dtype=x.dtype)
        for i in range(kh):
            y0 = i * dh
            for j in range(kw):
                x0 = j * dw
                cols[:, i, j] = padded[:, :, y0:y0 + sh * (out_h - 1) + 1:sh, x0:x0 + sw * (out_w - 1) + 1:sw]
        return cols

    # --- im2col / col2im -----------------------------------------------------------------

    def im2col(self, x, geom: ConvGeometry):
        """x: (n, c, h, w) -> cols: (c, kh, kw, n, out_h, out_w); zero padding."""
        return self._windows(x, geom, 0.0)

    def col2im(self, cols, x_shape: tuple[int, int, int, int], geom: ConvGeometry):
        """Adjoint of im2col: cols (c, kh, kw, n, out_h, out_w) -> (n, c, h, w).

        Each pixel sums the column entries that came from it, offsets in (i, j) order, the
        order the gather kernel uses, so float64 results agree exactly.
        """
        xp = self.xp
        kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w = geom
        n, c, h, w = x_shape
        padded = xp.zeros((c, n, *geom.padded_hw(h, w)), dtype=cols.dtype)
        for i in range(kh):
            y0 = i * dh
            for j in range(kw):
                x0 = j * dw
                padded[:, :, y0:y0 + sh * (out_h - 1) + 1:sh, x0:x0 + sw * (out_w - 1) + 1:sw] += cols[:, i, j]
        return xp.ascontiguousarray(padded[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3))

    # --- bias + activation ---------------------------------------------------------------

    def bias_act(self, x, bias, act: str | None, channel_major: bool):
        """Add a per-channel bias and apply `act` ("relu" or None).

        x: (c, n, inner) if channel_major (the output of one GEMM over the batch) else
        (n, c, inner); bias: (c,) or None. Returns a contiguous (n, c, inner) array.
        """
        xp = self.xp
        y = x.transpose(1, 0, 2) if channel_major else x
        if bias is not None:
            y = y + bias[None, :, None]
        elif act is None:
            return xp.ascontiguousarray(y)
        if act == "relu":
            y = xp.maximum(y, 0)
        return xp.ascontiguousarray(y)

    def relu_forward(self, x):
        return self.xp.maximum(x, 0)

    def relu_backward(self, dy, y):
        """dL/dx of relu from its output y: dy where y > 0, else 0."""
        return dy * (y > 0)

    def tanh_forward(self, x):
        return self.xp.tanh(x)

    def tanh_backward(self, dy, y):
        return dy * (1 - y * y)

    def sigmoid_forward(self, x):
        # tanh form: never overflows, for any sign of x
        return (self.xp.tanh(x * 0.5) + 1) * 0.5

    def sigmoid_backward(self, dy, y):
        return dy * y * (1 - y)

    def leaky_relu_forward(self, x, slope: float):
        """x where x > 0, else slope * x."""
        return self.xp.where(x > 0, x, x * x.dtype.type(slope))

    def leaky_relu_backward(self, dy, x, slope: float):
        """dL/dx from the input x: dy where x > 0, else slope * dy (PyTorch's choice at x == 0)."""
        return self.xp.where(x > 0, dy, dy * dy.dtype.type(slope))

    # --- convolution ---------------------------------------------------------------------

    def conv2d_forward(self, x, weight, bias, geom: ConvGeometry, groups: int, act: str | None = None):
        """x: (n, c, h, w), weight: (o, c/g, kh, kw), bias: (o,) or None.

        Returns y: (n, o, out_h, out_w) and `saved` for conv2d_backward (here the cols).
        """
        xp = self.xp
        kh, kw, out_h, out_w = geom.kh, geom.kw, geom.out_h, geom.out_w
        n, c, h, w = x.shape
        o = weight.shape[0]
        cols = self.im2col(x, geom)
        g_cols = cols.reshape(groups, (c // groups) * kh * kw, n * out_h * out_w)
        g_w = weight.reshape(groups, o // groups, (c // groups) * kh * kw)
        y = xp.matmul(g_w, g_cols).reshape(o, n, out_h * out_w)
        y = self.bias_act(y, bias, act, channel_major=True)
        return y.reshape(n, o, out_h, out_w), cols

    def conv2d_backward(self, dy, saved, weight, x_shape, geom: ConvGeometry, groups: int, wgrad, bgrad,
                        need_dx: bool = True, dx_add=None):
        """dy: (n, o, out_h, out_w) -> dx (n, c, h, w), or None when need_dx is False (a first layer).
        Adds dL/dweight into wgrad (like weight) and dL/dbias into bgrad ((o,)), each skipped when None
        (frozen, or no bias): every op that makes parameter gradients adds them into their buffers, so
        a GPU table runs the weight gradient as one product that accumulates (cuBLAS's beta = 1).
        dx_add: None, or an (n, c, h, w) addend (read only): returns dx + dx_add (Layer.backward_add)."""
        xp, cols = self.xp, saved
        kh, kw, out_h, out_w = geom.kh, geom.kw, geom.out_h, geom.out_w
        n, c, o = x_shape[0], x_shape[1], weight.shape[0]
        k = (c // groups) * kh * kw
        if wgrad is not None:
            g_dy = xp.ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(groups, o // groups, n * out_h * out_w)
            g_cols = cols.reshape(groups, k, n * out_h * out_w)
            wgrad += xp.matmul(g_dy, g_cols.transpose(0, 2, 1)).reshape(weight.shape)
        if bgrad is not None:
            bgrad += dy.sum(axis=(0, 2, 3))
        if not need_dx:
            return None
        dx = self.conv2d_input_grad(dy, weight, x_shape, geom, groups)
        return dx if dx_add is None else dx + dx_add

    # --- fused: convolution + ReLU + max pooling -----------------------------------------

    def conv_relu_maxpool_forward(self, x, weight, bias, geom: ConvGeometry, pool_geom: PoolGeometry,
                                  groups: int = 1) -> tuple[Any, Any]:
        """maxpool(relu(conv2d(x))): x (n, c, h, w) -> (y (n, o, pool out_h, pool out_w), saved).

        The reference is the plain composition of the three ops (so it covers every geometry);
        tables with a faster fused path override it.
        """
        z, conv_saved = self.conv2d_forward(x, weight, bias, geom, groups, act="relu")
        y, pool_saved = self.maxpool_forward(z, pool_geom)
        return y, (conv_saved, pool_saved, z, tuple(x.shape), tuple(z.shape), geom, pool_geom, groups)

    def conv_relu_maxpool_backward(self, dy, saved, weight, wgrad, bgrad, need_dx: bool = True):
        """dy: (n, o, pool out_h, pool out_w) -> dx (n, c, h, w) or None; adds the parameter
        gradients into wgrad and bgrad as conv2d_backward does."""
        conv_saved, pool_saved, z, x_shape, z_shape, geom, pool_geom, groups = saved
        dz = self.relu_backward(self.maxpool_backward(dy, pool_saved, z_shape, pool_geom), z)
        return self.conv2d_backward(dz, conv_saved, weight, x_shape, geom, groups, wgrad, bgrad, need_dx)

    def conv_relu_maxpool_inference(self, x, weight, bias, geom: ConvGeometry, pool_geom: PoolGeometry,
                                    groups: int = 1):
        """maxpool(relu(conv2d(x))) in eval mode: y (n, o, pool out_h, pool out_w) alone; a table
        may skip what only backward needs (the CPU's pooling masks)."""
        return self.conv_relu_maxpool_forward(x, weight, bias, geom, pool_geom, groups)[0]

    def inference_in_chunks(self, run, x):
        """run(x) for an eval-mode forward of x (n, ...). The reference runs the batch whole; a
        table whose caches a large batch overflows (the CPU's) runs it in chunks of images and
        concatenates the outputs along the batch axis (run must be per-image: eval mode is)."""
        return run(x)

    # --- pooling -------------------------------------------------------------------------

    def maxpool_forward(self, x, geom: PoolGeometry):
        """x: (n, c, h, w) -> y (n, c, out_h, out_w), saved: here argmax int32 (n, c, out_h, out_w).

        argmax is the index iy * w + ix of the chosen input in its (h, w) plane (-1 for a dilated
        window of padding alone, whose maximum is -inf as PyTorch's); of equal values the first in
        row-major window order wins, so a tie sends the gradient to exactly one input.
        """
        xp = self.xp
        kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w = geom
        n, c, h, w = x.shape
        win = self._windows(x.reshape(n * c, 1, h, w), geom, -xp.inf)
        win = win.reshape(kh * kw, n * c, out_h, out_w)
        k = xp.argmax(win, axis=0)  # first maximum: the tie rule
        y = xp.take_along_axis(win, k[None], axis=0)[0]
        oy = xp.arange(out_h).reshape(1, out_h, 1)
        ox = xp.arange(out_w).reshape(1, 1, out_w)
        iy = oy * sh - ph + (k // kw) * dh
        ix = ox * sw - pw + (k % kw) * dw
        # a dilated window may hold only padding: its maximum is -inf and no input is chosen (-1)
        inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
        argmax = xp.where(inside, iy * w + ix, -1).astype(xp.int32)
        return y.reshape(n, c, out_h, out_w), argmax.reshape(n, c, out_h, out_w)

    def maxpool_backward(self, dy, saved, x_shape, geom: PoolGeometry):
        """Each input receives the gradients of the windows whose argmax (`saved`) it is."""
        xp = self.xp
        argmax = saved
        n, c, h, w = x_shape
        plane = xp.arange(n * c, dtype=xp.int64).reshape(n * c, 1) * (h * w)
        chosen = argmax.reshape(n * c, -1)
        flat = (plane + xp.maximum(chosen, 0)).ravel()  # a window of padding alone (-1) adds nothing
        dx = xp.bincount(flat, weights=xp.where(chosen >= 0, dy.reshape(n * c, -1), 0).ravel(),
                         minlength=n * c * h * w)
        return dx.astype(dy.dtype, copy=False).reshape(x_shape)

    def _avgpool_divisor(self, h: int, w: int, geom: PoolGeometry, include_pad: bool, dtype):
        """(out_h, out_w) divisors, PyTorch's: with include_pad the window clipped to the padded
        input (input plus ph, pw each side; a ceil_mode window past it counts no further), else
        the window's elements inside the input."""
        xp = self.xp

        def axis(size: int, k: int, s: int, p: int, d: int, out: int):
            taps = numpy.arange(k)[None, :] * d + (numpy.arange(out) * s - p)[:, None]
            low, high = (-p, size + p) if include_pad else (0, size)
            return ((taps >= low) & (taps < high)).sum(axis=1)

        rows = axis(h, geom.kh, geom.sh, geom.ph, geom.dh, geom.out_h)
        cols = axis(w, geom.kw, geom.sw, geom.pw, geom.dw, geom.out_w)
        return xp.asarray((rows[:, None] * cols[None, :]).astype(dtype))

    def avgpool_forward(self, x, geom: PoolGeometry, include_pad: bool = True):
        """Window mean: the window sum over the divisor of _avgpool_divisor (kh * kw unless a
        window reaches past the padding, or with include_pad=False)."""
        kh, kw, out_h, out_w = geom.kh, geom.kw, geom.out_h, geom.out_w
        n, c, h, w = x.shape
        win = self._windows(x.reshape(n * c, 1, h, w), geom, 0.0)
        total = win.reshape(kh * kw, n * c, out_h, out_w).sum(axis=0)
        return (total / self._avgpool_divisor(h, w, geom, include_pad, x.dtype)).reshape(n, c, out_h, out_w)

    def avgpool_backward(self, dy, x_shape, geom: PoolGeometry, include_pad: bool = True):
        kh, kw, out_h, out_w = geom.kh, geom.kw, geom.out_h, geom.out_w
        n, c, h, w = x_shape
        share = dy.reshape(n * c, out_h, out_w) / self._avgpool_divisor(h, w, geom, include_pad, dy.dtype)
        # every window passes dy / divisor to each of its inputs: col2im of a broadcast (a pooling
        # window is a one-channel convolution window)
        cols = self.xp.broadcast_to(share.reshape(1, 1, 1, n * c, out_h, out_w), (1, kh, kw, n * c, out_h, out_w))
        return self.col2im(cols, (n * c, 1, h, w), geom).reshape(x_shape)

    def global_avgpool_forward(self, x):
        """x: (n, c, h, w) -> (n, c), the mean of each plane."""
        return x.mean(axis=(2, 3))

    def global_avgpool_backward(self, dy, x_shape):
        """dy: (n, c) -> dx (n, c, h, w): every position of a plane gets dy / (h * w)."""
        n, c, h, w = x_shape
        share = dy / dy.dtype.type(h * w)
        return self.xp.ascontiguousarray(self.xp.broadcast_to(share.reshape(n, c, 1, 1), x_shape))

    # --- batch normalization (channel axis 1; statistics over every other axis) ------------

    def batchnorm_forward(self, x, weight, bias, running_mean, running_var, eps: float, momentum: float):
        """Training-mode batch norm. x: (n, c, ...) -> (y like x, saved); weight, bias: (c,) or None.

        Each channel is normalised with its batch mean and biased variance over the m = x.size / c
        values it has; in place, running = (1 - momentum) * running + momentum * batch statistic,
        with the unbiased variance (times m / (m - 1)) for running_var. saved: (xhat, inv_std).
        """
        xp = self.xp
        axes = (0, *range(2, x.ndim))
        per_channel = (1, -1) + (1,) * (x.ndim - 2)
        m = x.size // x.shape[1]
        mean = x.mean(axis=axes)
        centred = x - mean.reshape(per_channel)
        var = (centred * centred).mean(axis=axes)
        inv_std = 1 / xp.sqrt(var + x.dtype.type(eps))
        xhat = centred * inv_std.reshape(per_channel)
        y = xhat if weight is None else xhat * weight.reshape(per_channel) + bias.reshape(per_channel)
        dt = x.dtype.type
        running_mean *= dt(1 - momentum)
        running_mean += mean * dt(momentum)
        running_var *= dt(1 - momentum)
        running_var += var * dt(momentum * m / (m - 1))
        return y, (xhat, inv_std)

    def batchnorm_eval(self, x, weight, bias, running_mean, running_var, eps: float):
        """Eval-mode batch norm: (x - running_mean) / sqrt(running_var + eps) * weight + bias."""
        xp = self.xp
        per_channel = (1, -1) + (1,) * (x.ndim - 2)
        scale = 1 / xp.sqrt(running_var + x.dtype.type(eps))
        if weight is not None:
            scale = scale * weight
        y = (x - running_mean.reshape(per_channel)) * scale.reshape(per_channel)
        return y if bias is None else y + bias.reshape(per_channel)

    def batchnorm_backward(self, dy, saved, weight, wgrad, bgrad, need_dx: bool = True):
        """dy like x -> dx like x, or None, for batchnorm_forward's `saved`; adds dL/dweight = sum dy *
        xhat into wgrad and dL/dbias = sum dy into bgrad ((c,), each skipped when None, as in
        conv2d_backward); dx = weight * inv_std * (dy - dbias / m - xhat * dweight / m)."""
        xhat, inv_std = saved
        axes = (0, *range(2, dy.ndim))
        per_channel = (1, -1) + (1,) * (dy.ndim - 2)
        m = dy.size // dy.shape[1]
        dbias = dy.sum(axis=axes)
        dweight = (dy * xhat).sum(axis=axes)
        if wgrad is not None:
            wgrad += dweight
        if bgrad is not None:
            bgrad += dbias
        if not need_dx:
            return None
        scale = inv_std if weight is None else inv_std * weight
        dt = dy.dtype.type
        dx = (dy - dbias.reshape(per_channel) * dt(1 / m) - xhat * (dweight * dt(1 / m)).reshape(per_channel))
        return dx * scale.reshape(per_channel)

    # --- linear --------------------------------------------------------------------------

    def linear_forward(self, x, weight, bias, act: str | None = None):
        """x: (n, in), weight: (out, in), bias: (out,) or None -> (n, out)."""
        y = self.xp.matmul(x, weight.T)
        n, o = y.shape
        return self.bias_act(y.reshape(n, o, 1), bias, act, channel_major=False).reshape(n, o)

    def linear_backward(self, dy, x, weight, wgrad, bgrad, need_dx: bool = True):
        """dy: (n, out) -> dx (n, in), or None if not need_dx; adds dL/dweight into wgrad (out, in)
        and dL/dbias into bgrad (out,), each skipped when None (see conv2d_backward)."""
        xp = self.xp
        dx = xp.matmul(dy, weight) if need_dx else None
        if wgrad is not None:
            wgrad += xp.matmul(dy.T, x)
        if bgrad is not None:
            bgrad += dy.sum(axis=0)
        return dx

    # --- dropout -------------------------------------------------------------------------

    def dropout_mask(self, shape, p: float, dtype, rng: numpy.random.Generator):
        """Inverted-dropout mask: 0 with probability p, else 1 / (1 - p).

        Drawn on the host from the layer's own seeded generator, so every device drops the
        same units for the same seed.
        """
        keep = rng.random(shape) >= p
        mask = keep.astype(dtype) / numpy.asarray(1.0 - p, dtype=dtype)
        return self.xp.asarray(mask)

    # --- loss ----------------------------------------------------------------------------

    def softmax_xent_forward(self, logits, labels):
        """logits: (n, k), labels: int (n,) -> (per-row loss (n,), probs (n, k)).

        log-sum-exp with the row maximum m subtracted, so no logit can overflow; the loss is
        log(s) - (picked - m), shifted logit first: log(s) + m - picked rounds log(s)'s small
        terms away near |m| ~ 50 in float32 (the kernel, loss.cu, computes the same order).
        """
        xp = self.xp
        m = logits.max(axis=1, keepdims=True)
        e = xp.exp(logits - m)
        s = e.sum(axis=1, keepdims=True)
        probs = e / s
        picked = xp.take_along_axis(logits, labels.reshape(-1, 1).astype(xp.int64), axis=1)
        loss = (xp.log(s) - (picked - m)).reshape(-1)
        return loss, probs

    def softmax_xent_backward(self, probs, labels, scale: float):
        """(probs - onehot(labels)) * scale; scale = upstream gradient / n for a batch mean."""
        xp = self.xp
        d = probs.copy()
        rows = xp.arange(probs.shape[0])
        d[rows, labels] -= 1
        d *= probs.dtype.type(scale)
        return d
