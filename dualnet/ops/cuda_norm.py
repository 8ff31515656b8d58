"""Batch normalization on the GPU tables (norm.cu), mixed into CupyOps: training forward and backward
as one block per channel (a fixed-order tree reduction, a barrier, then the channel's outputs), with
what follows a batch norm in a residual network fused in (the ReLU, the residual sum: layers/fused.py's
batchnorm_act_* ops), and eval mode.

Launches per batch norm: forward one (bn_forward: statistics, running statistics, output), backward
one (bn_backward: the gradient sums, the parameter gradients added in, dz and dx), whatever the ReLU
and residual. The input is read through strides: the GPU convolution's output,
a channel-major view (ops/products.py), is normalised without a transpose, and its input gradient
is written in that same layout, which the convolution's backward reads as it is (no transpose).
"""

from __future__ import annotations

from typing import Any


def _swap01(a: Any) -> Any:
    """a with its first two axes exchanged (a view)."""
    return a.transpose(1, 0, *range(2, a.ndim))


class _Strided:
    """x (n, c, ...) as the kernels read it: `base`, a C-contiguous array of its values, with an
    image stride `sn` and a channel stride `sc` (x itself, or the base of a channel-major view)."""

    __slots__ = ("base", "n", "c", "inner", "sn", "sc", "channel_major")

    def __init__(self, base: Any, n: int, c: int, inner: int, channel_major: bool):
        self.base, self.n, self.c, self.inner, self.channel_major = base, n, c, inner, channel_major
        self.sn, self.sc = (inner, n * inner) if channel_major else (c * inner, inner)

    @property
    def dims(self) -> tuple[int, int, int, int, int]:
        return self.n, self.c, self.inner, self.sn, self.sc

    def like(self, base: Any) -> Any:
        """An array of base's layout (base.shape == self.base.shape) seen as x is: (n, c, ...)."""
        return _swap01(base) if self.channel_major else base


class _BnSaved:
    """What the training forward keeps for its backward: the input as read, the batch statistics,
    the output when a ReLU followed (its mask), whether a residual was added."""

    __slots__ = ("x", "mean", "inv_std", "scale", "y", "has_residual")

    def __init__(self, x: _Strided, mean: Any, inv_std: Any, scale: Any, y: Any, has_residual: bool):
        self.x, self.mean, self.inv_std, self.scale = x, mean, inv_std, scale
        self.y, self.has_residual = y, has_residual


class NormKernelOps:
    """Overrides of the batch-norm ops of ReferenceOps with norm.cu; needs CupyOps's xp, launcher,
    _c, _constant and _nothing."""

    xp: Any
    launcher: Any

    def _c(self, a: Any) -> Any:  # pragma: no cover - CupyOps defines these
        raise NotImplementedError

    def _constant(self, value: float, n: int, dtype: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _nothing(self, dtype: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _strided(self, x: Any) -> _Strided:
        """x (n, c, ...) as the kernels read it: itself when C-contiguous, the base of a channel-major
        view, else a contiguous copy."""
        n, c = int(x.shape[0]), int(x.shape[1])
        inner = int(x.size // max(n * c, 1))
        if not x.flags.c_contiguous:
            t = _swap01(x)
            if t.flags.c_contiguous:
                return _Strided(t, n, c, inner, True)
            x = self._c(x)
        return _Strided(x, n, c, inner, False)

    def _affine(self, weight: Any, bias: Any, c: int, dtype: Any) -> tuple[Any, Any]:
        """weight and bias, or ones and zeros for batch norm without an affine map."""
        return (self._constant(1.0, c, dtype) if weight is None else self._c(weight),
                self._constant(0.0, c, dtype) if bias is None else self._c(bias))

    # --- training --------------------------------------------------------------------------

    def batchnorm_act_forward(self, x, weight, bias, running_mean, running_var, eps, momentum, act="relu",
                              residual=None):
        """As ReferenceOps.batchnorm_act_forward: one launch (bn_forward) whatever act and residual; y
        C-contiguous; running statistics updated in place."""
        xp = self.xp
        s = self._strided(x)
        c, dt = s.c, x.dtype
        w, b = self._affine(weight, bias, c, dt)
        res = self._c(residual) if residual is not None else self._nothing(dt)
        y = xp.empty(x.shape, dtype=dt)
        mean, inv_std, scale = (xp.empty(c, dtype=dt) for _ in range(3))
        relu = int(act == "relu")
        self.launcher.launch("bn_forward", dt, s.base, w, b, res, running_mean, running_var, y, mean, inv_std, scale,
                             *s.dims, float(eps), float(momentum), relu, int(residual is not None))
        return y, _BnSaved(s, mean, inv_std, scale, y if relu else None, residual is not None)

    def batchnorm_forward(self, x, weight, bias, running_mean, running_var, eps, momentum):
        """As ReferenceOps.batchnorm_forward (batchnorm_act_forward with nothing fused)."""
        return self.batchnorm_act_forward(x, weight, bias, running_mean, running_var, eps, momentum, None, None)

    def batchnorm_act_backward(self, dy, saved, weight, wgrad, bgrad, need_dx=True):
        """As ReferenceOps.batchnorm_act_backward: one launch (bn_backward), the parameter gradients added
        into wgrad and bgrad; dx in the input's layout (a channel-major view for the convolution's
        output), dresidual C-contiguous."""
        if not isinstance(saved, _BnSaved):
            return super().batchnorm_act_backward(dy, saved, weight, wgrad, bgrad, need_dx)  # type: ignore[misc]
        xp = self.xp
        s = saved.x
        dy = self._c(dy)
        dt = dy.dtype
        relu = int(saved.y is not None)
        y = saved.y if relu else self._nothing(dt)
        dz = xp.empty(dy.shape, dtype=dt) if saved.has_residual else self._nothing(dt)
        dx = xp.empty(s.base.shape, dtype=dt) if need_dx else self._nothing(dt)
        self.launcher.launch("bn_backward", dt, dy, y, s.base, saved.mean, saved.inv_std, saved.scale, dz, dx,
                             self._nothing(dt) if wgrad is None else wgrad,
                             self._nothing(dt) if bgrad is None else bgrad, *s.dims, relu,
                             int(saved.has_residual), int(need_dx), int(wgrad is not None), int(bgrad is not None))
        return (s.like(dx) if need_dx else None), (dz if saved.has_residual else None)

    def batchnorm_backward(self, dy, saved, weight, wgrad, bgrad, need_dx=True):
        """As ReferenceOps.batchnorm_backward: dx in the input's layout; gradients added in."""
        if not isinstance(saved, _BnSaved):
            return super().batchnorm_backward(dy, saved, weight, wgrad, bgrad, need_dx)  # type: ignore[misc]
        return self.batchnorm_act_backward(dy, saved, weight, wgrad, bgrad, need_dx)[0]

    # --- eval mode, and the residual sum + ReLU --------------------------------------------

    def _apply(self, x, mean, scale, bias, act, residual):
        s = self._strided(x)
        dt = x.dtype
        y = self.xp.empty(x.shape, dtype=dt)
        res = self._c(residual) if residual is not None else self._nothing(dt)
        self.launcher.launch("bn_apply", dt, s.base, mean, scale, bias, res, y, *s.dims, int(act == "relu"),
                             int(residual is not None))
        return y

    def batchnorm_act_eval(self, x, weight, bias, running_mean, running_var, eps, act="relu", residual=None):
        """As ReferenceOps.batchnorm_act_eval: one bn_apply with the running statistics."""
        c = int(x.shape[1])
        w, b = self._affine(weight, bias, c, x.dtype)
        scale = self._c(w / self.xp.sqrt(running_var + x.dtype.type(eps)))
        return self._apply(x, self._c(running_mean), scale, b, act, residual)

    def batchnorm_eval(self, x, weight, bias, running_mean, running_var, eps):
        return self.batchnorm_act_eval(x, weight, bias, running_mean, running_var, eps, None, None)

    def add_relu_forward(self, a, b):
        """relu(a + b) in one launch: bn_apply with mean 0, scale 1, bias 0 ((a - 0) * 1 + 0 is a, up
        to the sign of a zero) and b as the residual."""
        c = int(a.shape[1]) if a.ndim > 1 else 1
        zero, one = self._constant(0.0, c, a.dtype), self._constant(1.0, c, a.dtype)
        return self._apply(a if a.ndim > 1 else a.reshape(-1, 1), zero, one, zero, "relu",
                           b if a.ndim > 1 else b.reshape(-1, 1)).reshape(a.shape)
