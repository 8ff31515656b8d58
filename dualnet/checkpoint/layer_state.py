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
from ..layers.walk import walk

__all__ = ["owned_buffers", "dropout_layers", "collect_buffers", "write_buffers", "read_buffers",
           "FIRST_VERSION_WITH_BUFFERS", "Tree", "tree", "named"]

FIRST_VERSION_WITH_BUFFERS = 2
Fail = Callable[[str], CheckpointError]


#: (dotted path, layer) of a model and every layer in it, as `walk(model, include_self=True)` gives
#: them: walked once and shared by every step of a save or a read (a model may have 10**5 layers)
Tree = list[tuple[str, Layer]]


def tree(layer: Layer) -> Tree:
    """`layer` and every layer in it, depth first (see Tree)."""
    return list(walk(layer, include_self=True))


def named(layers: Tree, what: str) -> Iterator[tuple[str, Any]]:
    """(name, value) of every parameter (`what` "parameters") or buffer ("buffers") of a Tree, in
    the order and with the names of `named_parameters` and `named_buffers`."""
    for path, sub in layers:
        for attr, value in (sub.own_parameters() if what == "parameters" else sub.own_buffers()):
            yield f"{path}.{attr}" if path else attr, value


def owned_buffers(layer: Layer | Tree, prefix: str = "") -> Iterator[tuple[str, Layer, str]]:
    """(dotted name, owning layer, attribute) of every buffer, in `named_buffers` order."""
    for path, sub in (layer if isinstance(layer, list) else walk(layer, include_self=True)):
        for attr, _ in sub.own_buffers():
            yield f"{prefix}{path}.{attr}" if path else prefix + attr, sub, attr


def dropout_layers(layer: Layer, nested: bool = True, layers: Tree | None = None) -> list[Dropout]:
    """The Dropout layers whose RNG states a checkpoint keeps, depth first; format 1 kept only
    those directly in the model (nested=False), so reading one must count the same way. `layers`:
    the model's Tree, when the caller has it."""
    if nested:
        return [sub for _, sub in (layers[1:] if layers is not None else walk(layer)) if isinstance(sub, Dropout)]
    return [child for _, child in layer.children() if isinstance(child, Dropout)]


def collect_buffers(model: Layer, refuse: Fail, layers: Tree | None = None) -> dict[str, np.ndarray]:
    """Every buffer of `model` (whose Tree is `layers`, when given) as a host array, validated
    before any file is opened."""
    out: dict[str, np.ndarray] = {}
    for name, b in (named(layers, "buffers") if layers is not None else model.named_buffers()):
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


def read_buffers(model_group: Any, model: Layer, version: int, fail: Fail, layers: Tree | None = None) -> None:
    """Load the stored buffers into `model` (already cast to the checkpoint's dtype), each checked
    against the buffer the rebuilt layer holds: same names, shapes and dtypes, finite values, and
    values the layer accepts (`Layer.buffer_problem`: a batch norm's variance >= 0)."""
    if version < FIRST_VERSION_WITH_BUFFERS:
        return
    bg = model_group.get("buffers")
    if not isinstance(bg, h5py.Group):
        raise fail(f"missing group 'model/buffers' (required from format {FIRST_VERSION_WITH_BUFFERS})")
    owners = list(owned_buffers(layers if layers is not None else model))
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
