"""2-D padding layers with PyTorch's names and semantics: ZeroPad2d, ConstantPad2d, ReflectionPad2d,
ReplicationPad2d. `padding` is an int (every side) or (left, right, top, bottom)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Layer


def pad4(value: Any, layer: str, allow_negative: bool) -> tuple[int, int, int, int]:
    """An int or a (left, right, top, bottom) 4-tuple of ints; ValueError names the layer."""
    ints = (int, np.integer)
    items = (value,) * 4 if isinstance(value, ints) and not isinstance(value, bool) else value
    ok = (isinstance(items, (tuple, list)) and len(items) == 4
          and all(isinstance(v, ints) and not isinstance(v, bool) for v in items))
    if not ok:
        raise ValueError(f"{layer}: padding must be an int or a (left, right, top, bottom) tuple of 4 ints, "
                         f"got {value!r}")
    if not allow_negative and min(items) < 0:
        raise ValueError(f"{layer}: padding must be >= 0, got {value!r}")
    return tuple(int(v) for v in items)  # type: ignore[return-value]


class _Pad2d(Layer):
    """Shared body; `mode` is one of reference_layers.PAD_MODES."""

    kind = "pad"
    mode = "constant"

    def __init__(self, padding: Any, value: float = 0.0):
        super().__init__()
        # a constant pad may crop (negative sizes), as PyTorch's; a mirror or an edge needs the rows it copies
        self.padding = pad4(padding, type(self).__name__, allow_negative=self.mode == "constant")
        if not (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)):
            raise ValueError(f"{type(self).__name__}: value must be a number, got {value!r}")
        self.value = float(value)

    def config(self) -> dict[str, Any]:
        return dict(padding=list(self.padding))

    def _out_hw(self, h: int, w: int) -> tuple[int, int]:
        left, right, top, bottom = self.padding
        out_h, out_w = h + top + bottom, w + left + right
        if out_h < 1 or out_w < 1:
            raise ValueError(f"{self.name}: padding {self.padding} (left, right, top, bottom) leaves an empty "
                             f"{out_h}x{out_w} output of a {h}x{w} input; crop less")
        if self.mode == "reflect" and (max(left, right) >= w or max(top, bottom) >= h):
            raise ValueError(f"{self.name}: reflection padding {self.padding} (left, right, top, bottom) must be "
                             f"smaller than the {h}x{w} input in each direction; pad less or use ReplicationPad2d")
        return out_h, out_w

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3:
            raise ValueError(f"{self.name}: expected inputs of shape (C, H, W), got {tuple(shape)}")
        return (shape[0], *self._out_hw(shape[1], shape[2]))

    def forward(self, x: Any) -> Any:
        """x: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right)."""
        self._check_input(x, 4, "(N, C, H, W)")
        self._out_hw(x.shape[2], x.shape[3])
        self._cache = tuple(x.shape) if self._records() else None
        return self.ops.pad2d_forward(x, self.padding, self.mode, self.value)

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        x_shape = self._need_cache()
        return self.ops.pad2d_backward(dy, x_shape, self.padding, self.mode) if need_input_grad else None


class ConstantPad2d(_Pad2d):
    """Pads with `value` (negative sizes crop)."""

    def __init__(self, padding: Any, value: float):
        super().__init__(padding, value)

    def config(self) -> dict[str, Any]:
        return dict(padding=list(self.padding), value=self.value)


class ZeroPad2d(_Pad2d):
    """Pads with zeros (negative sizes crop)."""

    def __init__(self, padding: Any):
        super().__init__(padding, 0.0)


class ReflectionPad2d(_Pad2d):
    """Mirrors the input about its edge element (which is not repeated); each pad < the input size."""

    mode = "reflect"

    def __init__(self, padding: Any):
        super().__init__(padding, 0.0)


class ReplicationPad2d(_Pad2d):
    """Repeats the edge element."""

    mode = "replicate"

    def __init__(self, padding: Any):
        super().__init__(padding, 0.0)
