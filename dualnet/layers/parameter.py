"""Parameter: a trainable array, its gradient, its optimizer state and whether it is frozen."""

from __future__ import annotations

from typing import Any

from ..backend import Device, array_device, get_device, on_device, to_device
from ..errors import UsageError


class Parameter:
    """A trainable array `data` and its accumulated gradient `grad` (same device, dtype and shape).

    Both may be views into a flat buffer shared with other parameters (layers/flat.py). Assigning
    `data` or `grad` an array of the same shape and dtype copies it in (from any device); another
    shape or dtype raises ValueError, since a gradient or checkpoint of the old kind would no
    longer fit. `rehome` replaces data and gradient together (moves and casts use it).

    `requires_grad` False freezes it: backward adds no gradient into it (`grad` stays as it is,
    zero after `zero_grad`), optimizers leave it unchanged, and checkpoints keep the flag.
    """

    def __init__(self, data: Any, name: str = "", device: Device | None = None, requires_grad: bool = True):
        """data: a host (NumPy) or device array, moved to `device` (default: the active device, the
        one a layer built now lives on); name: default, the attribute of the layer holding it."""
        device = device if device is not None else get_device()
        data = to_device(data, device)
        self.requires_grad = bool(requires_grad)
        self._data = data
        self._grad = data * 0
        self._flat: Any = None  # the FlatBuffer holding data and grad, if any
        self.name = name
        self.device = device
        # optimizer buffers (momentum, Adam moments) live with the parameter, so that moving
        # a model moves its optimizer state too
        self.state: dict[str, Any] = {}

    @property
    def data(self) -> Any:
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        self._assign(self._data, value, "data")

    @property
    def grad(self) -> Any:
        return self._grad

    @grad.setter
    def grad(self, value: Any) -> None:
        self._assign(self._grad, value, "grad")

    def _assign(self, current: Any, value: Any, what: str) -> None:
        if value is current:  # `p.data -= u` writes in place, then assigns the same array back
            return
        shape, dtype = tuple(getattr(value, "shape", ())), getattr(value, "dtype", None)
        if shape != tuple(current.shape) or dtype != current.dtype:
            got = f"shape {shape} {dtype}" if dtype is not None else f"a {type(value).__name__}"
            raise UsageError(f"Parameter {self.name or '?'}: cannot assign {got} to .{what}, which holds "
                             f"shape {tuple(current.shape)} {current.dtype}; assign an array of that shape and "
                             f"dtype (cast the whole model with model.astype(dtype), or build a new layer for "
                             f"another shape)")
        if array_device(value) != array_device(current):
            value = to_device(value, self.device)
        current[...] = value

    def rehome(self, data: Any, grad: Any = None, device: Device | None = None) -> None:
        """Replace data and gradient together (grad: zeros like data when None), leaving any flat
        buffer: a move to another device or a cast goes through here, never through `.data =`."""
        if grad is None:
            grad = data * 0
        if tuple(grad.shape) != tuple(data.shape) or grad.dtype != data.dtype:
            raise UsageError(f"Parameter {self.name or '?'}: rehome got data {tuple(data.shape)} {data.dtype} "
                             f"but grad {tuple(grad.shape)} {grad.dtype}; they must match")
        if self._flat is not None:
            self._flat.broken = True
            self._flat = None
        self._data, self._grad = data, grad
        if device is not None:
            self.device = device

    def _adopt(self, data: Any, grad: Any, flat: Any) -> None:
        """Become views into `flat` (called by FlatBuffer, which has copied the values in)."""
        if self._flat is not None and self._flat is not flat:
            self._flat.broken = True
        self._data, self._grad, self._flat = data, grad, flat

    @on_device  # a fill is a kernel: on "gpu:N" it runs on N
    def zero_grad(self) -> None:
        """Zero this parameter's gradient in place (one fill)."""
        self._grad.fill(0)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._data.shape)

    @property
    def size(self) -> int:
        return int(self._data.size)

    def __repr__(self) -> str:
        frozen = "" if self.requires_grad else ", requires_grad=False"
        return f"Parameter({self.name or '?'}, shape={self.shape}, dtype={self._data.dtype}{frozen})"
