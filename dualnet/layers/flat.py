"""Flat parameter buffers: the data and gradients of many Parameters in one array each.

`pack(params)` moves a list of parameters into one `FlatBuffer` per (device, dtype): one data
array and one gradient array, with every `Parameter.data` / `.grad` a contiguous view into them
(segments start on 64-byte boundaries, the alignment cuBLAS and vector loads want; the gaps are
zeros). An optimizer then updates every parameter with one kernel over the buffer, `zero_grad` is
one fill, a finiteness check is one pass, and a distributed all-reduce has one array to send.
Optimizer state (momentum, Adam's moments) lives in flat buffers of the same layout, and each
`p.state[name]` is a view into them, so checkpoints read and write per-parameter arrays as before.

A parameter leaves its buffer when it is re-homed (moved to another device or cast, see
`Parameter.rehome`); the buffer is then `broken` and whoever packed it packs again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..backend import on_device

_ALIGN_BYTES = 64


def _aligned(n: int, itemsize: int) -> int:
    step = max(1, _ALIGN_BYTES // itemsize)
    return -(-n // step) * step


class FlatBuffer:
    """The data and gradient of `params` (one device, one dtype) as views of two flat arrays.

    data, grad: (total,) arrays; `slots[i]` = (offset, size) of params[i] in them.
    """

    def __init__(self, params: Sequence[Any]) -> None:
        first = params[0]
        xp, dtype = first.device.xp, first._data.dtype
        self.params = tuple(params)
        self.device = first.device
        self.dtype = dtype
        offsets, total = [], 0
        for p in self.params:
            offsets.append(total)
            total = _aligned(total + p.size, dtype.itemsize)
        self.total = total
        self.slots = tuple((o, p.size) for o, p in zip(offsets, self.params))
        self.states: dict[str, Any] = {}
        self._views: dict[str, list[Any]] = {}  # state name -> the per-parameter views handed out
        self.broken = False
        self._adopt_all(xp)

    @on_device  # CuPy allocates on the current device: on "gpu:N" that must be N
    def _adopt_all(self, xp: Any) -> None:
        """Allocate data and grad and make every parameter a view of them (its values copied in)."""
        self.data = xp.zeros(self.total, dtype=self.dtype)
        self.grad = xp.zeros(self.total, dtype=self.dtype)
        for p, (o, n) in zip(self.params, self.slots):
            d = self.data[o:o + n].reshape(p.shape)
            g = self.grad[o:o + n].reshape(p.shape)
            d[...] = p._data
            g[...] = p._grad
            p._adopt(d, g, self)

    @on_device  # a fill is a kernel: on "gpu:N" it runs on N
    def zero_grad(self) -> None:
        """Zero the whole gradient buffer: one fill."""
        self.grad.fill(0)

    def covers(self, params: Sequence[Any]) -> bool:
        """True when `params` are exactly this buffer's parameters, in order, all still in it."""
        return (not self.broken and len(params) == len(self.params)
                and all(a is b for a, b in zip(params, self.params)))

    @on_device  # a new state buffer is allocated on the parameters' GPU
    def state(self, name: str) -> Any:
        """The flat state buffer `name` (zeros when new), with every p.state[name] its view.

        A p.state[name] that was replaced (by a checkpoint reader, say) is copied in first; a
        missing one starts at zero, as a fresh optimizer buffer does.
        """
        flat = self.states.get(name)
        if flat is None:
            flat = self.states[name] = self.device.xp.zeros(self.total, dtype=self.dtype)
            self._views[name] = [flat[o:o + n].reshape(p.shape) for p, (o, n) in zip(self.params, self.slots)]
        for p, view in zip(self.params, self._views[name]):
            cur = p.state.get(name)
            if cur is view:
                continue
            if cur is None:
                view.fill(0)
            else:
                view[...] = cur
            p.state[name] = view
        return flat


def pack(params: Iterable[Any]) -> list[FlatBuffer]:
    """One FlatBuffer per (device, dtype) group of `params`, in first-seen order.

    A group already packed exactly as asked is reused, so packing twice is free.
    """
    groups: dict[tuple[str, str], list[Any]] = {}
    for p in params:
        groups.setdefault((p.device.name, str(p._data.dtype)), []).append(p)
    out = []
    for group in groups.values():
        current = group[0]._flat
        out.append(current if current is not None and current.covers(group) else FlatBuffer(group))
    return out


def zero_grads(params: Iterable[Any]) -> None:
    """Zero the gradients of `params`: one fill per flat buffer they cover whole, else per array."""
    params = list(params)
    done: set[int] = set()
    for p in params:
        buf = p._flat
        if buf is None or id(buf) in done:
            continue
        members = {id(q) for q in buf.params}
        if not buf.broken and members <= {id(q) for q in params}:
            buf.zero_grad()
            done.add(id(buf))
    for p in params:
        if p._flat is None or id(p._flat) not in done:
            p.zero_grad()
