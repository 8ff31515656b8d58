"""Upsample: nearest or bilinear resizing of (N, C, H, W) images, PyTorch's nn.Upsample semantics."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..ops.reference_layers import UPSAMPLE_MODES
from .base import Layer


def _pair_of(value: Any, what: str, kind: type, layer: str = "Upsample") -> tuple[Any, Any] | None:
    """None, a positive number or an (h, w) pair of them."""
    if value is None:
        return None
    number = (int, np.integer) if kind is int else (int, float, np.integer, np.floating)
    pair = (value, value) if isinstance(value, number) else value
    ok = (isinstance(pair, (tuple, list)) and len(pair) == 2
          and all(isinstance(v, number) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in pair))
    if not ok or isinstance(value, bool):
        raise ValueError(f"{layer}: {what} must be a positive {kind.__name__} or an (h, w) pair of them, got {value!r}")
    return kind(pair[0]), kind(pair[1])


class Upsample(Layer):
    """Resize x: (N, C, H, W) -> (N, C, out_h, out_w) to `size`, or by `scale_factor` (out = floor(H *
    scale)); mode "nearest" (PyTorch's: source index floor(o / scale)) or "bilinear" (align_corners
    as PyTorch's: False samples pixel centres, True maps the corner pixels onto each other)."""

    kind = "up"

    def __init__(self, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                 align_corners: bool | None = None):
        super().__init__()
        self.size = _pair_of(size, "size", int)
        self.scale_factor = _pair_of(scale_factor, "scale_factor", float)
        if (self.size is None) == (self.scale_factor is None):
            raise ValueError(f"Upsample: give exactly one of size and scale_factor, got size={size!r}, "
                             f"scale_factor={scale_factor!r}")
        if mode not in UPSAMPLE_MODES:
            raise ValueError(f"Upsample: mode must be one of {', '.join(map(repr, UPSAMPLE_MODES))}, got {mode!r}")
        if align_corners is not None and mode == "nearest":
            raise ValueError("Upsample: align_corners can only be set with mode='bilinear' (as in PyTorch); "
                             "leave it None for 'nearest'")
        self.mode = mode
        self.align_corners = bool(align_corners)

    def config(self) -> dict[str, Any]:
        return dict(size=list(self.size) if self.size else None,
                    scale_factor=list(self.scale_factor) if self.scale_factor else None, mode=self.mode,
                    align_corners=self.align_corners if self.mode == "bilinear" else None)

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        """The output size for an h x w input; ValueError if it is empty."""
        if self.size is not None:
            return self.size
        sh, sw = self.scale_factor  # type: ignore[misc]
        out = (int(math.floor(h * sh)), int(math.floor(w * sw)))
        if min(out) < 1:
            raise ValueError(f"{self.name}: scale_factor {self.scale_factor} gives an empty {out[0]}x{out[1]} output "
                             f"of a {h}x{w} input; use a larger scale_factor or give size")
        return out

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3:
            raise ValueError(f"{self.name}: expected inputs of shape (C, H, W), got {tuple(shape)}")
        return (shape[0], *self.out_hw(shape[1], shape[2]))

    def _scales(self) -> tuple[float | None, float | None]:
        # PyTorch's source coordinate uses 1 / scale_factor when one was given, never in / out
        return self.scale_factor if self.scale_factor is not None else (None, None)

    def forward(self, x: Any) -> Any:
        self._check_input(x, 4, "(N, C, H, W)")
        out = self.out_hw(x.shape[2], x.shape[3])
        self._cache = tuple(x.shape) if self._records() else None
        return self.ops.upsample_forward(x, out, self._scales(), self.mode, self.align_corners)

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        x_shape = self._need_cache()
        if not need_input_grad:
            return None
        return self.ops.upsample_backward(dy, x_shape, self._scales(), self.mode, self.align_corners)
