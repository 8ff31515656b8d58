"""A model's non-trainable layer state in checkpoints: buffers (`/model/buffers`) and Dropout RNGs.

Buffers are named as `Layer.named_buffers` names them ("layers.1.running_mean" is
"bn1.running_mean" in a Sequential whose second layer is bn1); each is one dataset of its own
dtype and shape (BatchNorm's counter is a 0-d int64), read back exactly into the layer that owns
it. Format 1 files hold no buffers: their models keep the buffers a fresh layer starts with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import h5py
import numpy as np

from ..backend import to_device, to_numpy
from ..data.limits import h5_check_size
from ..errors import CheckpointError, DataError
from ..layers import Dropout, Layer

__all__ = ["owned_buffers", "dropout_layers", "collect_buffers", "write_buffers", "read_buffers",
           "FIRST_VERSION_WITH_BUFFERS"]

FIRST_VERSION_WITH_BUFFERS = 2
Fail = Callable[[str], CheckpointError]


def owned_buffers(layer: Layer, prefix: str = "") -> Iterator[tuple[str, Layer, str]]:
    """(dotted name, owning layer, attribute) of every buffer, in `named_buffers` order."""
    for attr, _ in layer.own_buffers():
        yield prefix + attr, layer, attr
    for name, child in layer.children():
        yield from owned_buffers(child, f"{prefix}{name}.")


def dropout_layers(layer: Layer, nested: bool = True) -> list[Dropout]:
    """The Dropout layers whose RNG states a checkpoint keeps, depth first; format 1 kept only
    those directly in the model (nested=False), so reading one must count the same way."""
    found: list[Dropout] = []
    for _, child in layer.children():
        if isinstance(child, Dropout):
            found.append(child)
        elif nested:
            found += dropout_layers(child)
    return found


def collect_buffers(model: Layer, refuse: Fail) -> dict[str, np.ndarray]:
    """Every buffer of `model` as a host array, validated before any file is opened."""
    out: dict[str, np.ndarray] = {}
    for name, b in model.named_buffers():
        if "/" in name or name in out:
            raise refuse(f"buffer name {name!r} is {'duplicated' if name in out else 'not allowed (has /)'}; "
                         "rename the layer or the buffer")
        arr = np.array(to_numpy(b), order="C")  # not ascontiguousarray: it makes a 0-d counter 1-d
        if arr.dtype.kind not in "fiub":
            raise refuse(f"buffer {name} has dtype {arr.dtype}; buffers must hold numbers")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise refuse(f"buffer {name} contains non-finite values (training diverged?); the previous file is kept")
        out[name] = arr
    return out


def write_buffers(model_group: Any, buffers: dict[str, np.ndarray]) -> None:
    bg = model_group.create_group("buffers")
    for name, arr in buffers.items():
        # HDF5 cannot compress a scalar dataset (a 0-d counter)
        options = dict(compression="gzip", compression_opts=4) if arr.ndim else {}
        bg.create_dataset(name, data=arr, **options)


def read_buffers(model_group: Any, model: Layer, version: int, fail: Fail) -> None:
    """Load the stored buffers into `model` (already cast to the checkpoint's dtype), each checked
    against the buffer the rebuilt layer holds: same names, shapes and dtypes, finite values, and
    values the layer accepts (`Layer.buffer_problem`: a batch norm's variance >= 0)."""
    if version < FIRST_VERSION_WITH_BUFFERS:
        return
    bg = model_group.get("buffers")
    if not isinstance(bg, h5py.Group):
        raise fail(f"missing group 'model/buffers' (required from format {FIRST_VERSION_WITH_BUFFERS})")
    owners = list(owned_buffers(model))
    extra = sorted(set(bg) - {name for name, _, _ in owners})
    if extra:
        raise fail(f"unexpected buffers not in the model architecture: {', '.join(extra)}")
    for name, layer, attr in owners:
        current = getattr(layer, attr)
        ds = bg.get(name)
        label = f"buffer {name} (dataset model/buffers/{name})"
        if not isinstance(ds, h5py.Dataset):
            raise fail(f"missing {label}")
        if tuple(ds.shape) != tuple(current.shape):
            raise fail(f"{label} has shape {tuple(ds.shape)} in the file but the model needs {tuple(current.shape)}")
        if ds.dtype != current.dtype:
            raise fail(f"{label} has dtype {ds.dtype} in the file but the model needs {current.dtype}")
        try:
            h5_check_size(ds, label)
        except DataError as exc:
            raise fail(str(exc)) from None
        arr = np.array(ds[()])  # an ndarray even for a 0-d dataset (h5py gives a NumPy scalar)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise fail(f"{label} contains {int(arr.size - np.isfinite(arr).sum())} non-finite values (NaN/inf)")
        problem = layer.buffer_problem(attr, arr)
        if problem:
            raise fail(f"{label} of layer {layer.name} {problem}")
        setattr(layer, attr, to_device(arr, layer.device))
