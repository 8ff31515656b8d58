"""Sliding-window geometry: one type, `Window`, for convolution and pooling, and out_size.

Ops, layers, kernels' callers and tests read geometry by field name (`geom.out_h`), never by
position. The fields keep the kernels' argument order kh, kw, sh, sw, ph, pw, dh, dw, out_h,
out_w, so `*geom` still passes them to a launch. `ConvGeometry` and `PoolGeometry` are names of
this one type (a convolution and a pooling window differ in no field).

Padding may be asymmetric (explicit (left, right, top, bottom) padding, "same" padding with an odd
total, pooling's ceil_mode): ph and pw are the *leading* pads (top, left), and out_h / out_w already
count the trailing ones. Window oy covers rows oy * sh - ph + i * dh (0 <= i < kh); a window row
outside [0, h) is padding. Nothing else about the trailing pad is needed, except by average
pooling's count_include_pad divisor, which pooling (symmetric padding only) takes as ph, pw.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import UsageError


def out_size(size: int, k: int, s: int, p: int, d: int = 1, ceil_mode: bool = False, p_end: int | None = None) -> int:
    """Output length of a sliding window: floor((size + p + p_end - d(k-1) - 1) / s) + 1 (p_end
    defaults to p). ceil_mode rounds up instead, as PyTorch's pooling does: the last window must
    start inside the input or its leading padding, so one that would start in the trailing pad
    is dropped."""
    span = size + p + (p if p_end is None else p_end) - d * (k - 1) - 1
    if span < 0:
        return span // s + 1  # empty (< 1): the caller reports it
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= size + p:
        out -= 1
    return out


def padding4(padding: Any) -> tuple[int, int, int, int]:
    """(ph, pw) symmetric or (left, right, top, bottom) -> (left, right, top, bottom)."""
    if len(padding) == 4:
        return tuple(int(v) for v in padding)  # type: ignore[return-value]
    ph, pw = padding
    return int(pw), int(pw), int(ph), int(ph)


class Window(NamedTuple):
    """Kernel (kh, kw), stride, leading padding, dilation and the output size of one sliding window."""

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
           padding: tuple[int, ...] = (0, 0), dilation: tuple[int, int] = (1, 1), where: str = "Conv2d",
           ceil_mode: bool = False) -> Window:
        """The geometry for an h x w input; padding (ph, pw) or (left, right, top, bottom).
        ValueError naming `where` if the output is empty."""
        (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
        left, right, top, bottom = padding4(padding)
        oh = out_size(h, kh, sh, top, dh, ceil_mode, bottom)
        ow = out_size(w, kw, sw, left, dw, ceil_mode, right)
        if oh < 1 or ow < 1:
            pads = f"{top}x{left}" if (top, left) == (bottom, right) else f"(left, right, top, bottom) " \
                                                                           f"{(left, right, top, bottom)}"
            extra = f", dilation {dh}x{dw}" if (dh, dw) != (1, 1) else ""
            raise UsageError(f"{where}: input {h}x{w} with kernel {kh}x{kw}, stride {sh}x{sw}, "
                             f"padding {pads}{extra} gives an empty {oh}x{ow} output")
        return cls(kh, kw, sh, sw, top, left, dh, dw, oh, ow)

    def padded_hw(self, h: int, w: int) -> tuple[int, int]:
        """Rows and columns of a padded copy of an h x w input (input at [ph, pw]) that holds
        every window: the input and its leading pad, stretched to the last window's end."""
        return (max(self.ph + h, (self.out_h - 1) * self.sh + (self.kh - 1) * self.dh + 1),
                max(self.pw + w, (self.out_w - 1) * self.sw + (self.kw - 1) * self.dw + 1))

    def tiles(self, h: int, w: int) -> bool:
        """True when the windows tile an h x w input exactly: no overlap, no padding, nothing left."""
        return ((self.kh, self.kw) == (self.sh, self.sw) and not (self.ph or self.pw) and (self.dh, self.dw) == (1, 1)
                and self.out_h * self.kh == h and self.out_w * self.kw == w)

    def kernel_args(self) -> tuple[int, ...]:
        """The fused conv + ReLU + max-pool kernel's pooling arguments (undilated): kh, kw, sh, sw,
        ph, pw, out_h, out_w."""
        return self.kh, self.kw, self.sh, self.sw, self.ph, self.pw, self.out_h, self.out_w


ConvGeometry = Window
PoolGeometry = Window
Geometry = Window
