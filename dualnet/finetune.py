"""Fine-tuning helpers: freeze layers by name, and start a model from another model's checkpoint.

    model = dn.models.get("resnet8", num_classes=5)
    dn.finetune.init_from(model, "runs/resnet8.h5")   # every parameter and buffer whose name and shape match
    dn.finetune.freeze(model, ["conv*", "bn*"])        # layer-name globs; a frozen BatchNorm keeps its statistics

`dualnet train --init-from CKPT --freeze PATTERN` does the same for a new run.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator
from typing import Any

from .backend import to_device
from .errors import CheckpointError
from .layers.base import Layer

__all__ = ["named_layers", "freeze", "init_from"]


def named_layers(model: Layer, prefix: str = "") -> Iterator[tuple[str, Layer]]:
    """(dotted name, layer) of every layer below `model`, depth first ("res1.body.conv1")."""
    for name, child in model.children():
        path = f"{prefix}{name}"
        yield path, child
        yield from named_layers(child, f"{path}.")


def freeze(model: Layer, patterns: Iterable[str]) -> list[str]:
    """Freeze every layer whose dotted name matches one of the glob `patterns` (fnmatch: "conv*",
    "res1.*", "fc[12]"); returns the names of the parameters frozen. ValueError, naming the layers,
    when a pattern matches no layer with parameters."""
    names = [(path, layer) for path, layer in named_layers(model) if any(True for _ in layer.parameters())]
    frozen: list[str] = []
    for pattern in patterns:
        hits = [(path, layer) for path, layer in names if fnmatch.fnmatchcase(path, pattern)]
        if not hits:
            raise ValueError(f"--freeze {pattern!r} matches no layer with parameters; the model's are: "
                             f"{', '.join(path for path, _ in names)}")
        for path, layer in hits:
            layer.freeze()
            frozen += [f"{path}.{n}" for n, _ in layer.named_parameters() if f"{path}.{n}" not in frozen]
    return frozen


def init_from(model: Layer, path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Copy into `model` every parameter and buffer of the checkpoint at `path` whose name and shape
    match (batch-norm statistics included); returns (copied names, skipped names with the reason),
    e.g. a classifier head of another class count is skipped. CheckpointError when nothing matches."""
    from .checkpoint import read

    stored = read(path).model
    theirs: dict[str, Any] = {n: p.data for n, p in stored.named_parameters()}
    theirs.update({f"buffer:{n}": b for n, b in stored.named_buffers()})
    mine: dict[str, Any] = {n: p for n, p in model.named_parameters()}
    owners = {f"buffer:{n}": n for n, _ in model.named_buffers()}
    copied, skipped = [], []
    for name, value in theirs.items():
        label = name.removeprefix("buffer:")
        if name in mine:
            target = mine[name]
            if target.shape != tuple(value.shape):
                skipped.append(f"{label} (shape {tuple(value.shape)} here {target.shape})")
                continue
            target.data = to_device(value.astype(target.data.dtype), target.device)
            copied.append(label)
        elif name in owners:
            layer, attr = _buffer_owner(model, owners[name])
            current = getattr(layer, attr)
            if tuple(current.shape) != tuple(value.shape):
                skipped.append(f"{label} (shape {tuple(value.shape)} here {tuple(current.shape)})")
                continue
            current[...] = to_device(value.astype(current.dtype), layer.device)
            copied.append(label)
        else:
            skipped.append(f"{label} (not in this model)")
    if not any(n in mine for n in copied):
        raise CheckpointError(f"--init-from {path}: no parameter matches this model by name and shape (the "
                              f"checkpoint's: {', '.join(n for n in theirs if not n.startswith('buffer:'))})")
    return copied, skipped


def _buffer_owner(model: Layer, dotted: str) -> tuple[Layer, str]:
    """The layer holding buffer `dotted` ("bn1.running_mean") and the buffer's attribute name."""
    *path, attr = dotted.split(".")
    layer = model
    for part in path:
        layer = dict(layer.children())[part]
    return layer, attr
