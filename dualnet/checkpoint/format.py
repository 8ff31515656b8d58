"""The checkpoint file format: its HDF5 layout, version, and JSON attributes both ways.

Layout (every structured value is a JSON string attribute; arrays are plain numeric datasets, so
h5py, h5dump or HDFView read the file without dualnet):

    /                       attrs: format = "dualnet-checkpoint", format_version = 2,
                                   dualnet_version, created (ISO-8601 UTC), device (e.g. "cpu"),
                                   dtype (parameter dtype, e.g. "float32"), metadata (JSON object)
    /model                  attrs: config (JSON of Sequential.config()), spec (JSON of model.spec)
    /model/parameters/<name>        one dataset per named parameter, e.g. "conv1.weight"
    /model/buffers/<name>   one dataset per layer buffer (non-trainable state), named as
                            `named_buffers` names it, e.g. "bn1.running_mean", in the buffer's own
                            dtype and shape (BatchNorm's num_batches_tracked: a 0-d int64)
    /optimizer              (only when an optimizer is saved) attrs: type ("SGD", "Adam"),
                                   hyper (JSON), steps
    /optimizer/buffers/<i>/<buffer> buffers of the optimizer's i-th parameter ("velocity", "m", ...)
    /history                attrs: keys (JSON list, column order); one 1-D dataset per key, one
                                   entry per epoch (int64 if every value is an int, else float64;
                                   a value missing from an epoch, or None, is stored as NaN)
    /rng                    attrs: dropout (JSON list of each Dropout layer's bit_generator.state,
                                   depth first through nested containers), state (JSON of
                                   `rng_state`, only when given)

Versions: 2 added /model/buffers and counts nested Dropout layers in /rng dropout. Format 1 files
(no buffers: their layers keep a fresh layer's buffers; only the model's own Dropout layers in
/rng dropout) still load. A file of a newer version than FORMAT_VERSION is refused.
"""

from __future__ import annotations

import contextlib
import gc
import json
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import CheckpointError

FORMAT = "dualnet-checkpoint"
FORMAT_VERSION = 2
_FLOAT_DTYPES = ("float16", "float32", "float64")


def _json(value: Any, what: str, path: Any) -> str:
    def default(obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")

    try:
        return json.dumps(value, default=default)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"cannot save checkpoint {path}: {what} is not JSON-serialisable ({exc})") from None


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _read_json(node: Any, key: str, where: str, fail: Any, required: bool = True) -> Any:
    if key not in node.attrs:
        if required:
            raise fail(f"missing attribute {key!r} of {where}")
        return None
    try:
        return json.loads(_plain(node.attrs[key]))
    except (TypeError, ValueError) as exc:
        raise fail(f"attribute {key!r} of {where} is not valid JSON ({exc})") from None


_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a checkpoint is written or read. Building, walking
    and checking a model of 10**5 layers allocates millions of objects that all stay alive, and
    each allocation burst makes CPython scan every tracked object again (a third of `save`'s time);
    nothing freed in between is cyclic garbage worth collecting early. Nested and concurrent uses
    (threads) keep the collector paused until the last one ends, then restore it as it was."""
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()
