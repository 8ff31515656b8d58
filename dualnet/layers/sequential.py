"""Sequential: a chain of layers, the model type of dualnet.

Before running, the layers become a list of steps once (`fused.plan`): a Conv2d or Linear
followed by ReLU, or a Conv2d + ReLU + MaxPool2d, runs as one fused step. Forward and backward
are then two plain loops over the steps; the plan is made again only when the layers change.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..backend import Device, get_device_object
from .base import Layer, Parameter
from .fused import plan


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
            raise KeyError(f"no layer named {index!r}; layers: {', '.join(lay.name for lay in self.layers)}")
        return self.layers[index]

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for layer in self.layers:
            yield from layer.named_parameters(f"{prefix}{layer.name}.")

    def steps(self) -> list[Layer]:
        """The steps forward runs: the layers, with fusable runs replaced by fused steps."""
        key = (tuple(map(id, self.layers)), self.fuse)
        if getattr(self, "_plan_key", None) != key:
            self._plan = plan(self.layers) if self.fuse else list(self.layers)
            self._plan_key = key
        return self._plan

    def forward(self, x: Any) -> Any:
        steps = self._ran = self.steps()
        for step in steps:
            x = step(x)
        return x

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        """Backward through every step of the last forward; returns dL/dx.

        need_input_grad=False (a training loop, which has no use for dL/dx) returns None and
        stops at the first step with parameters, which skips computing its input gradient.
        """
        steps = getattr(self, "_ran", None) or self.steps()
        first = 0
        if not need_input_grad:
            first = next((i for i, s in enumerate(steps) if any(True for _ in s.parameters())), len(steps))
        for i in range(len(steps) - 1, first - 1, -1):
            if i == first and not need_input_grad:
                steps[i].backward(dy, need_input_grad=False)
            else:
                dy = steps[i].backward(dy)
        return dy if need_input_grad else None

    def train(self, mode: bool = True) -> Sequential:
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self

    def to(self, name: str | Device) -> Sequential:
        dev = get_device_object(name)
        for layer in self.layers:
            layer.to(dev)
        self.device = dev
        return self

    def astype(self, dtype: Any) -> Sequential:
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def config(self) -> dict[str, Any]:
        return {"layers": [{"type": type(lay).__name__, "name": lay.name, "config": lay.config()}
                           for lay in self.layers],
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

