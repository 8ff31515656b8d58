"""Sliding-window geometry: ConvGeometry, PoolGeometry and out_size, in one place.

Ops, layers, kernels' callers and tests read geometry by field name (`geom.out_h`), never by
position. Both tuples keep the kernels' argument order kh, kw, sh, sw, ph, pw, dh, dw, out_h,
out_w, so `*geom` still passes them to a launch.
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import UsageError


def out_size(size: int, k: int, s: int, p: int, d: int = 1) -> int:
    """Output length of a sliding window: floor((size + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _window(h: int, w: int, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
            dilation: tuple[int, int] | None, where: str) -> tuple[int, ...]:
    """The ten geometry fields; dilation None means pooling (no dilation, none in the message)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation or (1, 1)
    oh, ow = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
    if oh < 1 or ow < 1:
        extra = f", dilation {dh}x{dw}" if dilation is not None else ""
        raise UsageError(f"{where}: input {h}x{w} with kernel {kh}x{kw}, stride {sh}x{sw}, "
                         f"padding {ph}x{pw}{extra} gives an empty {oh}x{ow} output")
    return kh, kw, sh, sw, ph, pw, dh, dw, oh, ow


class ConvGeometry(NamedTuple):
    """Kernel (kh, kw), stride, padding, dilation and the output size of one convolution."""

    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    out_h: int
    out_w: int

    @classmethod
    def of(cls, h: int, w: int, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1),
           padding: tuple[int, int] = (0, 0), dilation: tuple[int, int] = (1, 1),
           where: str = "Conv2d") -> ConvGeometry:
        """The geometry for an h x w input; ValueError naming `where` if the output is empty."""
        return cls(*_window(h, w, kernel, stride, padding, dilation, where))


class PoolGeometry(NamedTuple):
    """Pooling window geometry; dh = dw = 1 (pooling has no dilation in dualnet)."""

    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    out_h: int
    out_w: int

    @classmethod
    def of(cls, h: int, w: int, kernel: tuple[int, int], stride: tuple[int, int],
           padding: tuple[int, int] = (0, 0), where: str = "pooling") -> PoolGeometry:
        """The geometry for an h x w input; ValueError naming `where` if the output is empty."""
        return cls(*_window(h, w, kernel, stride, padding, None, where))

    def tiles(self, h: int, w: int) -> bool:
        """True when the windows tile an h x w input exactly: no overlap, no padding, nothing left."""
        return ((self.kh, self.kw) == (self.sh, self.sw) and not (self.ph or self.pw)
                and self.out_h * self.kh == h and self.out_w * self.kw == w)

    def kernel_args(self) -> tuple[int, ...]:
        """The pooling kernels' geometry arguments: kh, kw, sh, sw, ph, pw, out_h, out_w."""
        return self.kh, self.kw, self.sh, self.sw, self.ph, self.pw, self.out_h, self.out_w


Geometry = ConvGeometry | PoolGeometry
