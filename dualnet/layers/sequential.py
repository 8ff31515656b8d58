"""Sequential: a chain of layers, the model type of dualnet.

Forward fuses a Conv2d or Linear directly followed by ReLU into one bias + ReLU step (one kernel
on the GPU); the ReLU layer still records its output, so backward is unchanged.
"""

from __future__ import annotations

from typing import Any, Iterator

from ..backend import Device, get_device_object
from .base import Layer, Parameter
from .conv import Conv2d
from .elementwise import ReLU
from .linear import Linear
from .pooling import MaxPool2d


class Sequential(Layer):
    """Layers applied in order. `input_shape` (C, H, W) enables `summary()` without data."""

    kind = "seq"

    def __init__(self, *layers: Layer, input_shape: tuple[int, ...] | None = None, fuse: bool = True):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ValueError(f"Sequential: item {i} is {type(layer).__name__}, not a dualnet layer")
        self.layers = list(layers)
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.fuse = fuse
        self.spec: dict[str, Any] = {}  # how models.get built it: {"name": ..., "kwargs": ...}
        counts: dict[str, int] = {}
        for layer in self.layers:
            if layer.name == type(layer).__name__:  # not named by the user
                counts[layer.kind] = counts.get(layer.kind, 0) + 1
                layer.name = f"{layer.kind}{counts[layer.kind]}"
        if self.layers:
            self.device = self.layers[0].device

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int | str) -> Layer:
        if isinstance(index, str):
            for layer in self.layers:
                if layer.name == index:
                    return layer
            raise KeyError(f"no layer named {index!r}; layers: {', '.join(l.name for l in self.layers)}")
        return self.layers[index]

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for layer in self.layers:
            yield from layer.named_parameters(f"{prefix}{layer.name}.")

    def forward(self, x: Any) -> Any:
        layers = self.layers
        self._fused_at: set[int] = set()  # starts of conv + ReLU + max-pool triples run as one op
        i = 0
        while i < len(layers):
            layer = layers[i]
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if (self.fuse and type(layer) is Conv2d and type(nxt) is ReLU and i + 2 < len(layers)
                    and type(layers[i + 2]) is MaxPool2d):
                y = layer.forward_relu_maxpool(x, nxt, layers[i + 2])
                if y is not None:
                    self._fused_at.add(i)
                    x = y
                    i += 3
                    continue
            if self.fuse and isinstance(layer, (Conv2d, Linear)) and type(nxt) is ReLU:
                x = nxt.accept_output(layer.forward(x, act="relu"))
                i += 2
            else:
                x = layer.forward(x)
                i += 1
        return x

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        """Backward through every layer; returns dL/dx.

        need_input_grad=False (a training loop, which has no use for dL/dx) returns None and
        stops at the first layer with parameters, which skips computing its input gradient.
        """
        first = 0
        if not need_input_grad:
            first = next((i for i, layer in enumerate(self.layers) if any(True for _ in layer.parameters())),
                         len(self.layers))
        fused_at = getattr(self, "_fused_at", set())
        i = len(self.layers) - 1
        while i >= first:
            start = i - 2 if i - 2 in fused_at else i
            layer = self.layers[start]
            last = start == first and not need_input_grad
            if start != i:
                dy = layer.backward_relu_maxpool(dy, need_input_grad=not last)
            elif last and isinstance(layer, (Conv2d, Linear, Sequential)):
                layer.backward(dy, need_input_grad=False)
            else:
                dy = layer.backward(dy)
            if last:
                return None
            i = start - 1
        return dy if need_input_grad else None

    def train(self, mode: bool = True) -> "Sequential":
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self

    def to(self, name: str | Device) -> "Sequential":
        dev = get_device_object(name)
        for layer in self.layers:
            layer.to(dev)
        self.device = dev
        return self

    def astype(self, dtype: Any) -> "Sequential":
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def zero_grad(self) -> None:
        for layer in self.layers:
            layer.zero_grad()

    def config(self) -> dict[str, Any]:
        return {"layers": [{"type": type(l).__name__, "name": l.name, "config": l.config()} for l in self.layers],
                "input_shape": list(self.input_shape) if self.input_shape else None}

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    def summary(self, input_shape: tuple[int, ...] | None = None, file: Any = None) -> str:
        """Print and return a table: layer, output shape, parameter count; then the total."""
        shape = tuple(input_shape or self.input_shape or ())
        rows = [("layer", "type", "output shape", "params")]
        if shape:
            rows.append(("input", "", "x".join(map(str, shape)), ""))
        for layer in self.layers:
            if shape:
                shape = layer.output_shape(shape)
            count = sum(p.size for p in layer.parameters())
            rows.append((layer.name, type(layer).__name__, "x".join(map(str, shape)) if shape else "?",
                         f"{count:,}" if count else "-"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(wd) if i < 3 else c.rjust(wd) for i, (c, wd) in enumerate(zip(r, widths)))
                 for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        total = self.num_parameters()
        lines.append("-" * len(lines[0]))
        lines.append(f"{total:,} trainable parameters ({self.device.name}, "
                     f"{next(iter(self.parameters())).data.dtype if total else 'n/a'})")
        text = "\n".join(lines)
        print(text, file=file)
        return text

