"""Sequential: a chain of layers, the model type of dualnet.

Before running, the layers become a list of steps once (`fused.plan`): a Conv2d, Linear or BatchNorm
followed by ReLU, a Conv2d + ReLU + MaxPool2d, or a Residual + ReLU (with its body's last batch
norm), runs as one fused step. Forward and backward
are then two plain loops over the steps; the plan is made again only when the layers change.
An eval-mode forward under no_grad() runs Conv2d + BatchNorm2d pairs as one folded convolution
(`bn_fold.run_inference`).
A Sequential may hold other containers (Sequential, Residual): parameters, buffers, modes,
moves and casts reach every nested layer through `Layer.children`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..backend import on_device
from ..errors import UsageError
from .base import Layer, layer_entry
from .bn_fold import run_inference
from .fused import plan


def assign_names(layers: Sequence[Layer]) -> None:
    """Name every layer not named by the user (name == class name) after its kind, with the next
    number that kind has not used yet in `layers`: conv1, relu1, pool1, conv2, ...

    Numbers already taken (by layers named earlier, e.g. the parts of a smaller Sequential) are
    skipped, so rebuilding a chain from named pieces gives the names of building it at once."""
    used = {layer.name for layer in layers}
    counts: dict[str, int] = {}
    for layer in layers:
        if layer.name != type(layer).__name__:
            continue
        k = counts.get(layer.kind, 0) + 1
        while f"{layer.kind}{k}" in used:
            k += 1
        counts[layer.kind] = k
        layer.name = f"{layer.kind}{k}"
        used.add(layer.name)


class Sequential(Layer):
    """Layers applied in order. `input_shape` (C, H, W) enables `summary()` without data."""

    kind = "seq"

    def __init__(self, *layers: Layer, input_shape: tuple[int, ...] | None = None, fuse: bool = True):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise UsageError(f"Sequential: item {i} is {type(layer).__name__}, not a dualnet layer")
        self.layers = list(layers)
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.fuse = fuse
        self.spec: dict[str, Any] = {}  # how models.get built it: {"name": ..., "kwargs": ...}
        assign_names(self.layers)
        seen: set[str] = set()
        twice: set[str] = set()
        for layer in self.layers:  # a set, not list.count: building stays linear in the layer count
            (twice if layer.name in seen else seen).add(layer.name)
        dup = sorted(twice)
        if dup:
            raise UsageError(f"Sequential: layer names must be unique, {', '.join(dup)} appear more than once; "
                             "rename the layers (layer.name = ...)")
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

    def children(self) -> list[tuple[str, Layer]]:
        return [(layer.name, layer) for layer in self.layers]

    def steps(self) -> list[Layer]:
        """The steps forward runs: the layers, with fusable runs replaced by fused steps."""
        key = (tuple(map(id, self.layers)), self.fuse)
        if getattr(self, "_plan_key", None) != key:
            self._plan = plan(self.layers) if self.fuse else list(self.layers)
            self._plan_key = key
        return self._plan

    def forward(self, x: Any) -> Any:
        steps = self._ran = self.steps()
        if self.training or self._records():  # backward needs every step's cache of the whole batch
            return _run(steps, x)
        # inference (no_grad): batch norms folded into their convolutions, and a large batch run
        # in cache-sized chunks by the outermost Sequential (bn_fold.run_inference)
        return run_inference(self, steps, x, _run)

    @on_device  # as __call__: on "gpu:N" everything happens on N
    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        """Backward through every step of the last forward; returns dL/dx.

        need_input_grad=False (a training loop, which has no use for dL/dx) returns None and
        stops at the first step with trainable parameters, which skips computing its input gradient.
        """
        return self._backward(dy, need_input_grad)

    @on_device
    def backward_add(self, dy: Any, addend: Any) -> Any:
        """Backward through every step, the first step's input gradient summed with `addend` by
        that step's backward_add (Layer.backward_add); returns dL/dx + addend."""
        steps = getattr(self, "_ran", None) or self.steps()
        if not steps:
            return dy + addend
        for i in range(len(steps) - 1, 0, -1):
            dy = steps[i].backward(dy)
        return steps[0].backward_add(dy, addend)

    def _backward(self, dy: Any, need_input_grad: bool) -> Any:
        steps = getattr(self, "_ran", None) or self.steps()
        first = 0
        if not need_input_grad:
            # frozen parameters need no gradient: a fine-tuned model stops at its first trainable step
            first = next((i for i, s in enumerate(steps) if any(p.requires_grad for p in s.parameters())), len(steps))
        for i in range(len(steps) - 1, first - 1, -1):
            if i == first and not need_input_grad:
                steps[i].backward(dy, need_input_grad=False)
            else:
                dy = steps[i].backward(dy)
        return dy if need_input_grad else None

    def config(self) -> dict[str, Any]:
        return {"layers": [layer_entry(lay) for lay in self.layers],
                "input_shape": list(self.input_shape) if self.input_shape else None}

    @classmethod
    def from_config(cls, config: dict[str, Any], build: Callable[[dict[str, Any]], Layer]) -> Sequential:
        entries = config.get("layers", [])
        if not isinstance(entries, list):
            raise UsageError(f"Sequential config: 'layers' must be a list of layer entries, got "
                             f"{type(entries).__name__}")
        layers = [build(entry) for entry in entries]
        shape = config.get("input_shape")
        return cls(*layers, input_shape=tuple(shape) if shape else None)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    def summary(self, input_shape: tuple[int, ...] | None = None, file: Any = None) -> ModelSummary:
        """The table of layers, output shapes and parameter counts, then the total, shown once:
        printed to `file` when given; else printed by a script, and shown as the returned value's
        repr by a REPL or notebook (so it does not appear twice there).

        Nested containers list their layers below their own row, indented by depth."""
        shape = tuple(input_shape or self.input_shape or ())
        rows = [("layer", "type", "output shape", "params")]
        if shape:
            rows.append(("input", "", "x".join(map(str, shape)), ""))
        for layer in self.layers:
            shape = _summary_rows(layer, layer.name, shape, 0, rows)
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(wd) if i < 3 else c.rjust(wd) for i, (c, wd) in enumerate(zip(r, widths)))
                 for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        total = self.num_parameters()
        lines.append("-" * len(lines[0]))
        buffers = sum(int(b.size) for _, b in self.named_buffers())
        lines.append(f"{total:,} trainable parameters" + (f", {buffers:,} buffer values" if buffers else "")
                     + f" ({self.device.name}, {next(iter(self.parameters())).data.dtype if total else 'n/a'})")
        text = ModelSummary("\n".join(lines))
        if file is not None or not _interactive():
            print(text, file=file)
        return text


class ModelSummary(str):
    """A model's summary table: a str whose repr is the table itself, as a REPL shows it."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython and Jupyter
        printer.text(str(self))


def _interactive() -> bool:
    """Whether a REPL or notebook will show a returned value (the plain REPL sets sys.ps1)."""
    if hasattr(sys, "ps1"):
        return True
    ipython = sys.modules.get("IPython")
    return ipython is not None and getattr(ipython, "get_ipython", lambda: None)() is not None


def _run(steps: Sequence[Layer], x: Any) -> Any:
    for step in steps:
        x = step(x)
    return x


def _summary_rows(layer: Layer, name: str, shape: tuple[int, ...], depth: int, rows: list) -> tuple[int, ...]:
    """Append the row of `layer` (and, below it, its sub-layers') for an input of `shape`;
    return its output shape (() when unknown). A Sequential's children run in a chain; the
    children of any other container (Residual's body and shortcut) each take its input."""
    out = layer.output_shape(shape) if shape else ()
    count = sum(p.size for p in layer.parameters())
    rows.append(("  " * depth + name, type(layer).__name__, "x".join(map(str, out)) if out else "?",
                 f"{count:,}" if count else "-"))
    inner = shape
    for child_name, child in layer.children():
        child_out = _summary_rows(child, child_name, inner, depth + 1, rows)
        if isinstance(layer, Sequential):
            inner = child_out
    return out
