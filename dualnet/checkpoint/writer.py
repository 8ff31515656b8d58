"""Writing checkpoints (`save`) and checking beforehand that one can be written (`check_writable`).

`save` writes through dualnet.outputs (the guarded writer): an unpredictable temporary file
beside the target, fsynced, read back and compared, renamed onto the target with os.replace and
the folder fsynced; a target that is an input of the command, a directory, a FIFO or a device is
refused before anything is written. A crash
at any moment leaves either the previous checkpoint or the new one, never a mixture. Every
problem a user can cause (an unwritable folder, a missing, foreign, damaged or mismatched file)
raises CheckpointError naming the file and the problem.
"""

from __future__ import annotations

import datetime
import errno
import json
import math
import os
import pathlib
from typing import Any

import h5py
import numpy as np

from ..backend import to_numpy
from ..errors import CheckpointError
from ..layers import Sequential
from ..outputs import OutputError, probe_writable, writing
from .format import FORMAT, FORMAT_VERSION, _json, gc_paused
from .layer_state import collect_buffers, dropout_layers, named, tree, write_buffers
from .loadable import check_loadable

__all__ = ["check_writable", "save"]


def check_writable(path: str | os.PathLike) -> pathlib.Path:
    """Make sure a checkpoint can later be written to `path` (creating its folder); else raise
    CheckpointError (an input of the command, a directory, FIFO or device, an unwritable folder)."""
    path = pathlib.Path(path)
    try:
        return probe_writable(path, "checkpoint")
    except OutputError as exc:
        fix = exc.fix.replace("choose another path", "choose another --out")
        raise CheckpointError(f"cannot write checkpoint to {path}: {exc.reason}; {fix}") from None


def _collect(model: Any, optimizer: Any, history: Any, rng_state: Any, metadata: dict, path: Any) -> dict:
    """Everything to write, as NumPy arrays and JSON strings, validated before the file is opened."""
    def refuse(problem: str) -> CheckpointError:
        return CheckpointError(f"cannot save checkpoint {path}: {problem}")

    if not isinstance(model, Sequential):
        raise refuse(f"expected a dualnet Sequential, got {type(model).__name__}")
    import dualnet

    layers = tree(model)  # walked once for every step below
    params: dict[str, np.ndarray] = {}
    frozen: list[str] = []
    for name, p in named(layers, "parameters"):
        if not p.requires_grad:
            frozen.append(name)
        if "/" in name or name in params:
            raise refuse(f"parameter name {name!r} is {'duplicated' if name in params else 'not allowed (has /)'}; "
                         "rename the layer")
        params[name] = arr = np.ascontiguousarray(to_numpy(p.data))
        if not np.isfinite(arr).all():
            raise refuse(f"parameter {name} contains non-finite values (training diverged?); the previous file is kept")
    dtypes = {a.dtype.name for a in params.values()}
    if len(dtypes) > 1:
        raise refuse(f"parameters mix dtypes {sorted(dtypes)}; cast the model with model.astype(...)")
    # the model's input normalization (set by a run, or read from the checkpoint it was loaded from)
    # travels with it, so dn.evaluate, predict and the ONNX export apply it after dn.load
    norm = getattr(model, "normalization", None) or (getattr(model, "metadata", None) or {}).get("normalization")
    if norm is not None and "normalization" not in metadata:
        metadata = {**metadata, "normalization": norm}
    for key, value in metadata.items():
        _json(value, f"metadata {key!r}", path)
    root = {"format": FORMAT, "format_version": FORMAT_VERSION, "dualnet_version": dualnet.__version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "device": getattr(getattr(model, "device", None), "name", "cpu"),
            "dtype": dtypes.pop() if dtypes else "float32", "metadata": _json(metadata, "metadata", path)}
    out: dict[str, Any] = {"root": root, "params": params, "buffers": collect_buffers(model, refuse, layers),
                           "frozen": set(frozen),
                           "config": _json(model.config(), "model config", path),
                           "spec": _json(getattr(model, "spec", None) or {}, "model spec", path)}
    if optimizer is not None:
        model_params = list(model.parameters())
        if len(optimizer.params) != len(model_params) or any(a is not b for a, b in
                                                              zip(optimizer.params, model_params, strict=True)):
            raise refuse("the optimizer does not optimize exactly this model's parameters "
                         "(build it over model.parameters())")
        state = optimizer.state_dict()
        out["optimizer"] = {"type": state["type"], "hyper": _json(state["hyper"], "optimizer hyperparameters", path),
                            "steps": int(state["steps"]),
                            "buffers": {int(i): {k: to_numpy(v) for k, v in b.items()}
                                        for i, b in state["buffers"].items()}}
    out["history"] = _history_columns(list(history or []), path)
    out["rebuilt"] = check_loadable(model, out["config"], root["dtype"], refuse, layers)
    drop = [layer.rng.bit_generator.state for layer in dropout_layers(model, layers=layers)]
    out["rng"] = {"dropout": _json(drop, "dropout rng state", path)}
    if rng_state is not None:
        out["rng"]["state"] = _json(rng_state, "rng_state", path)
    return out


def _history_columns(history: list, path: Any) -> dict[str, np.ndarray]:
    keys: list[str] = []
    for i, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise CheckpointError(f"cannot save checkpoint {path}: history entry {i} is "
                                  f"{type(entry).__name__}, not a dict")
        for k, v in entry.items():
            ok = v is None or (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool))
            if not isinstance(k, str) or not k or "/" in k or k in (".", ".."):
                raise CheckpointError(f"cannot save checkpoint {path}: history key {k!r} of epoch entry {i} "
                                      "is not a valid name (a non-empty string without '/')")
            if not ok:
                raise CheckpointError(f"cannot save checkpoint {path}: history key {k!r} of epoch entry {i} "
                                      f"has value {v!r}; history values must be numbers")
            if k not in keys:
                keys.append(k)
    columns = {}
    for k in keys:
        values = [e.get(k) for e in history]
        if all(isinstance(v, (int, np.integer)) for v in values):
            columns[k] = np.array(values, dtype=np.int64)
        else:
            columns[k] = np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
    return columns


def _write(f: Any, data: dict) -> None:
    for k, v in data["root"].items():
        f.attrs[k] = v
    g = f.create_group("model")
    g.attrs["config"], g.attrs["spec"] = data["config"], data["spec"]
    pg = g.create_group("parameters")
    for name, arr in data["params"].items():
        ds = pg.create_dataset(name, data=arr, compression="gzip", compression_opts=4)
        if name in data["frozen"]:  # absent means trainable: files from before frozen parameters read the same
            ds.attrs["requires_grad"] = False
    write_buffers(g, data["buffers"])
    if "optimizer" in data:
        opt = data["optimizer"]
        og = f.create_group("optimizer")
        og.attrs["type"], og.attrs["hyper"], og.attrs["steps"] = opt["type"], opt["hyper"], opt["steps"]
        bg = og.create_group("buffers")
        for i, buffers in opt["buffers"].items():
            ig = bg.create_group(str(i))
            for name, arr in buffers.items():
                ig.create_dataset(name, data=arr, compression="gzip", compression_opts=4)
    hg = f.create_group("history")
    hg.attrs["keys"] = json.dumps(list(data["history"]))
    for k, col in data["history"].items():
        hg.create_dataset(k, data=col)
    rg = f.create_group("rng")
    for k, v in data["rng"].items():
        rg.attrs[k] = v


def save(model: Any, path: str | os.PathLike, /, optimizer: Any = None, history: Any = None,
         rng_state: dict | None = None, **metadata: Any) -> pathlib.Path:
    """Write `model` (and optimizer state, history, RNG state, metadata) to one HDF5 file, atomically.

    `history` is a list of per-epoch dicts of numbers; `rng_state` and every metadata value must be
    JSON-serialisable (NumPy scalars and arrays are converted). Returns the path written.

    Refused before anything is created or replaced (CheckpointError naming the layer and the fix):
    a model `dn.load` could not rebuild, e.g. one with a layer class that is not registered
    (dn.layers.register) or a config() that does not rebuild its layer (see loadable.py)."""
    path = pathlib.Path(path)
    with gc_paused():  # a model of 10**5 layers is a few million objects: see gc_paused
        return _save(model, path, optimizer, history, rng_state, metadata)


def _save(model: Any, path: pathlib.Path, optimizer: Any, history: Any, rng_state: Any, metadata: dict) -> pathlib.Path:
    data = _collect(model, optimizer, history, rng_state, metadata, path)
    try:
        with writing(path, "checkpoint", durable=True, check=lambda tmp: _verify(tmp, path, data)) as out:
            out.write(_file_image(data, path))
    except OutputError as exc:
        raise CheckpointError(str(exc)) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ENOSPC:
            reason = "no space left on device"
        raise CheckpointError(f"cannot write checkpoint to {path}: {reason}; the previous file is kept") from None
    return path


def _file_image(data: dict, path: pathlib.Path) -> bytes:
    """The checkpoint as the bytes of an HDF5 file, built in memory.

    HDF5 never touches the disk: a full disk then fails in one plain write() (an OSError), never
    inside HDF5's flush or close, which leave a half-closed file that crashes the interpreter at
    exit. The image costs about the checkpoint's size in memory, once.
    """
    try:
        with h5py.File(f"dualnet-checkpoint-{id(data)}", "w", driver="core", backing_store=False) as f:
            _write(f, data)
            f.flush()
            return bytes(f.id.get_file_image())
    except OSError as exc:  # in memory: out of memory. Anything else is a bug and keeps its traceback
        raise CheckpointError(f"cannot write checkpoint to {path}: HDF5 failed to build it "
                              f"({exc.strerror or exc})") from None


def _verify(tmp: pathlib.Path, path: pathlib.Path, data: dict) -> None:
    """What was written must load, and give back the parameters and buffers saved, bit for bit."""
    from .reader import read

    try:  # the model check_loadable built from this very config is the one the file's config builds
        model = read(tmp, device="cpu", built=(data["config"], data.pop("rebuilt"))).model
    except CheckpointError as exc:
        problem = str(exc).split(": ", 1)[-1]
        raise CheckpointError(f"cannot save checkpoint {path}: the file would not load back ({problem}); "
                              "the previous file is kept") from None
    layers = tree(model)
    got = [(f"parameter {n}", p.data) for n, p in named(layers, "parameters")]
    got += [(f"buffer {n}", b) for n, b in named(layers, "buffers")]
    want = [(f"parameter {n}", a) for n, a in data["params"].items()]
    want += [(f"buffer {n}", a) for n, a in data["buffers"].items()]
    for (name, a), (_, b) in zip(got, want, strict=True):
        a = to_numpy(a)
        if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
            raise CheckpointError(f"cannot save checkpoint {path}: {name} reads back different from what was "
                                  "written (a dualnet bug: please report it); the previous file is kept")
