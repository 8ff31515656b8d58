"""Reading checkpoints back: every structure, shape, dtype and size is checked before use.

A missing, foreign, damaged, hostile or mismatched file raises CheckpointError naming the file and
the problem; sizes are judged from the file's metadata before anything large is read or built.
"""

from __future__ import annotations

import collections
import math
import os
import pathlib
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from ..backend import device as _device_scope
from ..backend import get_device, get_device_object, to_device
from ..data.files import h5_check_contained, regular_file
from ..data.limits import h5_check_size, h5_credible_size
from ..data.normalize import stored_normalization
from ..errors import CheckpointError, DataError
from ..layers import Parameter, Sequential, from_config
from .format import _FLOAT_DTYPES, FORMAT, FORMAT_VERSION, _plain, _read_json, gc_paused
from .layer_state import FIRST_VERSION_WITH_BUFFERS, dropout_layers, read_buffers, tree
from .layer_state import named as named_in

__all__ = ["Checkpoint", "load", "read"]

# One input example (input_shape) may hold at most this many values: predict allocates it.
MAX_INPUT_VALUES = 2**24
# The activations of one example through every layer, in bytes: LeNet-5 needs 0.05 MB, resnet20
# on 32x32 a few MB; a config with a padding of 1000 would need hundreds of MB per image
MAX_ACTIVATION_BYTES = 2**26


@dataclass
class Checkpoint:
    """A checkpoint read back: the rebuilt model (parameters, buffers, spec, Dropout RNGs restored) and the rest."""

    model: Sequential
    optimizer_state: dict | None
    history: list[dict]
    metadata: dict
    rng_state: dict | None
    attrs: dict
    path: pathlib.Path

    def make_optimizer(self) -> Any:
        """The saved optimizer rebuilt over `self.model`'s parameters, its state loaded; None if none saved."""
        if self.optimizer_state is None:
            return None
        state = self.optimizer_state
        try:
            opt = _optimizer(state["type"], self.model.parameters(), state["hyper"])
            opt.load_state_dict(state)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {self.path}: cannot rebuild the {state['type']} optimizer: "
                                  f"{exc}") from None
        return opt


def _optimizer(kind: str, params: Any, hyper: dict) -> Any:
    from .. import optim

    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in hyper.items()}  # betas
    return getattr(optim, kind)(params, **kwargs)


def _check_stored(ds: Any, label: str, fail: Any) -> None:
    """Refuse a dataset that declares far more data than the file stores (see dualnet.data.limits.h5_check_size)."""
    try:
        h5_check_size(ds, label)
    except DataError as exc:
        raise fail(str(exc)) from None


def _dataset(group: Any, name: str, shape: tuple, dtype: Any, label: str, fail: Any) -> np.ndarray:
    """Read a float dataset after checking its shape and dtype from the file's metadata alone."""
    ds = group.get(name)
    if not isinstance(ds, h5py.Dataset):
        raise fail(f"missing {label}")
    if tuple(ds.shape) != tuple(shape):
        raise fail(f"{label} has shape {tuple(ds.shape)} in the file but the model needs {tuple(shape)}")
    if ds.dtype != dtype:
        raise fail(f"{label} has dtype {ds.dtype} in the file but the checkpoint's dtype is {dtype}")
    _check_stored(ds, label, fail)
    arr = ds[()]
    finite = np.isfinite(arr)
    if not finite.all():
        raise fail(f"{label} contains {int(arr.size - finite.sum())} non-finite values (NaN/inf)")
    return arr


def check_readable(path: str | os.PathLike) -> pathlib.Path:
    """`path` if it is an existing regular file (nothing opened); else CheckpointError saying what it is."""
    path = pathlib.Path(path)

    def fail(problem: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {path}: {problem}")

    if not path.exists():
        raise fail("no such file")
    if path.is_dir():
        raise fail("is a directory, not a checkpoint file")
    regular_file(path, "checkpoint file", fail)  # a FIFO would block open(), a device never end
    return path


def read(path: str | os.PathLike, device: Any = None, built: tuple[str, Sequential] | None = None) -> Checkpoint:
    """Read and validate a checkpoint; the model is rebuilt on `device` (default: the active one).

    `built` is for `save`'s read-back of the file it wrote: (config JSON, a fresh model built from
    it on `device`, cast to the file's dtype); when the file's config attribute is that very text,
    its parameters are read into that model instead of building the same config again (with
    10**5 layers, building is most of the time a read takes)."""
    with gc_paused():  # see gc_paused: reading builds a model of possibly 10**5 layers
        return _read(pathlib.Path(path), device, built)


def _read(path: pathlib.Path, device: Any, built: tuple[str, Sequential] | None) -> Checkpoint:
    dev = get_device_object(device) if device is not None else get_device()

    def fail(problem: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {path}: {problem}")

    check_readable(path)
    try:
        with open(path, "rb"):
            pass
        f = h5py.File(path, "r")
    except OSError as exc:
        if isinstance(exc, PermissionError):
            raise fail(f"cannot open ({exc.strerror})") from None
        if "unable to lock file" in str(exc).lower():
            raise fail("is locked by another process that is writing it (HDF5 file locking); wait until that "
                       f"process has finished ({exc})") from None
        problem = f"damaged or truncated HDF5 file ({exc})" if h5py.is_hdf5(path) else "not an HDF5 file"
        raise fail(problem) from None
    try:
        with f:
            # before any group or dataset is looked up: a lookup can follow an external link
            h5_check_contained(f, fail)
            return _read_open(f, path, dev, fail, built)
    except CheckpointError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:  # damaged beyond our checks
        raise fail(f"damaged or unreadable ({type(exc).__name__}: {exc})") from None


def _read_open(f: Any, path: pathlib.Path, device: Any, fail: Any, built: tuple[str, Sequential] | None = None
               ) -> Checkpoint:
    fmt = _plain(f.attrs.get("format"))
    if fmt != FORMAT:
        raise fail(f"not a dualnet checkpoint (root attribute 'format' is {fmt!r}, expected {FORMAT!r})")
    version = _plain(f.attrs.get("format_version"))
    if not isinstance(version, int) or version < 1:
        raise fail(f"bad 'format_version' {version!r}")
    if version > FORMAT_VERSION:
        raise fail(f"written by a newer dualnet (format {version}); upgrade dualnet "
                   f"(this one reads format {FORMAT_VERSION})")
    attrs = {k: _plain(v) for k, v in f.attrs.items()}
    dtype_name = attrs.get("dtype", "float32")
    if dtype_name not in _FLOAT_DTYPES:
        raise fail(f"unsupported parameter dtype {dtype_name!r}")
    dtype = np.dtype(dtype_name)
    metadata = _read_json(f, "metadata", "the file root", fail, required=False) or {}
    mg = f.get("model")
    if not isinstance(mg, h5py.Group):
        raise fail("missing group 'model'")
    config = _read_json(mg, "config", "group 'model'", fail)
    spec = _read_json(mg, "spec", "group 'model'", fail, required=False) or {}
    if not all(isinstance(v, dict) for v in (metadata, config, spec)):
        raise fail("attributes 'metadata', 'config' and 'spec' must be JSON objects")
    pg = mg.get("parameters")
    if not isinstance(pg, h5py.Group):
        raise fail("missing group 'model/parameters'")
    if not isinstance(config.get("layers"), list):
        raise fail("bad model config: it has no 'layers' list")
    _check_layer_names(config["layers"], fail)
    # a hostile config must not make us allocate huge layers: compare with what the file stores
    needed = sum(_config_size(entry) for entry in config["layers"])
    stored = sum(h5_credible_size(ds) for ds in pg.values() if isinstance(ds, h5py.Dataset))
    if needed > 2 * stored + 10**6:
        raise fail(f"the architecture in 'config' needs {needed:,} parameters but the file stores {stored:,}")
    try:
        if built is not None and _plain(mg.attrs["config"]) == built[0]:
            model = built[1]
        else:
            with _device_scope(device):
                model = from_config(config)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise fail(f"bad model config: {exc}") from None
    if model.input_shape is not None:
        _check_input_shape(model, config.get("input_shape"), dtype, fail)
    try:  # the numbers every input will be divided by: checked before any command uses the model
        shape = model.input_shape or ()
        stored_normalization(metadata, shape[0] if len(shape) == 3 else None, f"{path}: metadata")
    except DataError as exc:
        raise CheckpointError(str(exc)) from None
    model.spec = spec
    if built is None or model is not built[1]:  # (save's model is built in the file's dtype already)
        model.astype(dtype)
    layers = tree(model)  # walked once for the parameters, buffers and Dropout layers below
    pairs = list(named_in(layers, "parameters"))
    named = dict(pairs)
    if len(named) != len(pairs):  # one name for two parameters: one of them would keep fresh weights
        twice = sorted(n for n, k in collections.Counter(n for n, _ in pairs).items() if k > 1)
        raise fail(f"bad model config: parameter names {', '.join(twice)} occur twice (duplicate layer names)")
    extra = sorted(set(pg) - set(named))
    if extra:
        raise fail(f"unexpected parameters not in the model architecture: {', '.join(extra)}")
    for name, p in named.items():
        arr = _dataset(pg, name, p.shape, dtype, f"parameter {name}", fail)
        p.data = to_device(arr, p.device)
        p.requires_grad = bool(pg[name].attrs.get("requires_grad", True))
    read_buffers(mg, model, version, fail, layers)
    optimizer_state = _read_optimizer(f, list(named.values()), dtype, fail)
    history = _read_history(f, fail)
    rg = f.get("rng")
    rng_state = None
    if isinstance(rg, h5py.Group):
        rng_state = _read_json(rg, "state", "group 'rng'", fail, required=False)
        drop = _read_json(rg, "dropout", "group 'rng'", fail, required=False)
        dropouts = dropout_layers(model, nested=version >= FIRST_VERSION_WITH_BUFFERS, layers=layers)
        if drop is not None:
            if not isinstance(drop, list) or len(drop) != len(dropouts):
                raise fail(f"rng 'dropout' holds {len(drop) if isinstance(drop, list) else 'no'} states "
                           f"for {len(dropouts)} Dropout layers")
            for layer, state in zip(dropouts, drop, strict=True):
                try:
                    layer.rng.bit_generator.state = state
                except (TypeError, ValueError, KeyError) as exc:
                    raise fail(f"bad rng state of {layer.name}: {exc}") from None
    return Checkpoint(model, optimizer_state, history, metadata, rng_state, attrs, path)


def _check_layer_names(layers: list, fail: Any) -> None:
    """Layer names, where given, are distinct non-empty strings: a duplicate would load one layer's
    parameters into the other and leave fresh random weights behind."""
    seen: set[str] = set()
    for i, entry in enumerate(layers):
        if not isinstance(entry, dict) or "name" not in entry:
            continue
        name = entry["name"]
        if not isinstance(name, str) or not name or "/" in name:
            raise fail(f"bad model config: layer {i} has name {name!r}; a layer name is a non-empty string "
                       "without '/'")
        if name in seen:
            raise fail(f"bad model config: two layers are named {name!r}; layer names must be unique")
        seen.add(name)


def _check_input_shape(model: Sequential, shape: Any, dtype: np.dtype, fail: Any) -> None:
    """The stored input shape must be a few positive ints of bounded size that the layers accept."""
    ok = (isinstance(shape, list) and 1 <= len(shape) <= 3
          and all(type(v) is int and v >= 1 for v in shape) and math.prod(shape) <= MAX_INPUT_VALUES)
    if not ok:
        raise fail(f"bad model config: input_shape {shape!r} is not 1 to 3 positive sizes of at most "
                   f"{MAX_INPUT_VALUES:,} values in all")
    try:
        shapes = [tuple(shape)]
        for layer in model.layers:
            shapes.append(tuple(layer.output_shape(shapes[-1])))
    except ValueError as exc:
        raise fail(f"bad model config: the layers do not accept the stored input_shape {tuple(shape)}: "
                   f"{exc}") from None
    need = sum(math.prod(s) for s in shapes) * dtype.itemsize
    if need > MAX_ACTIVATION_BYTES:
        biggest = max(zip(shapes[1:], model.layers, strict=True), key=lambda sl: math.prod(sl[0]))
        raise fail(f"bad model config: its activations need {need / 2**20:,.0f} MB per example for input_shape "
                   f"{tuple(shape)} (layer {biggest[1].name} outputs {'x'.join(map(str, biggest[0]))}), more "
                   f"than the {MAX_ACTIVATION_BYTES / 2**20:,.0f} MB accepted; the config is corrupt")


def _config_size(entry: Any) -> int:
    """Parameters a config entry will allocate: a Conv2d's or Linear's own, a container's (Sequential,
    Residual, a registered one) those of the entries nested in its config; 0 for others or malformed ones."""
    try:
        c, kind = entry["config"], entry["type"]
        dims = {"Conv2d": ("out_channels", "in_channels"), "Linear": ("out_features", "in_features")}.get(kind)
        if dims is None:  # a container's layers sit in its config, at any depth
            return sum(_config_size(v) for value in c.values() for v in (value if isinstance(value, list) else [value])
                       if isinstance(v, dict) and "type" in v)
        k = c.get("kernel_size", 1)
        kh, kw = (k, k) if isinstance(k, int) else k
        if not all(type(v) is int and v >= 1 for v in (c[dims[0]], c[dims[1]], kh, kw)):
            return 0
        out, inp, groups = c[dims[0]], c[dims[1]], c.get("groups", 1)
        return out * (inp // (groups if type(groups) is int and groups >= 1 else 1)) * kh * kw + out
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError):
        return 0


def _read_optimizer(f: Any, params: list, dtype: np.dtype, fail: Any) -> dict | None:
    og = f.get("optimizer")
    if og is None:
        return None
    if not isinstance(og, h5py.Group):
        raise fail("'optimizer' is not a group")
    kind = _plain(og.attrs.get("type"))
    if kind not in ("SGD", "Adam", "AdamW"):
        raise fail(f"unknown optimizer type {kind!r} (known: SGD, Adam, AdamW)")
    hyper = _read_json(og, "hyper", "group 'optimizer'", fail)
    steps = _plain(og.attrs.get("steps"))
    if not isinstance(hyper, dict) or not isinstance(steps, int) or steps < 0:
        raise fail("optimizer 'hyper' must be a JSON object and 'steps' an int >= 0")
    try:  # the optimizer's own checks, on a stand-in parameter
        # on the host whatever the current device: the stand-in's buffers must live where its array does
        _optimizer(kind, [Parameter(np.zeros(1), device=get_device_object("cpu"))], hyper)
    except (TypeError, ValueError) as exc:
        raise fail(f"bad {kind} hyperparameters {hyper}: {exc}") from None
    buffers: dict[int, dict[str, np.ndarray]] = {}
    bg = og.get("buffers")
    for key in (bg if isinstance(bg, h5py.Group) else []):
        if not key.isdigit() or str(int(key)) != key or int(key) >= len(params) or not isinstance(bg[key], h5py.Group):
            raise fail(f"optimizer buffers/{key} names no parameter (the model has {len(params)})")
        i = int(key)
        buffers[i] = {name: _dataset(bg[key], name, params[i].shape, dtype, f"optimizer buffer {key}/{name}", fail)
                      for name in bg[key]}
    return {"type": kind, "hyper": hyper, "steps": steps, "buffers": buffers}


def _read_history(f: Any, fail: Any) -> list[dict]:
    hg = f.get("history")
    if not isinstance(hg, h5py.Group):
        return []
    keys = _read_json(hg, "keys", "group 'history'", fail, required=False)
    keys = list(hg) if keys is None else keys
    if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(hg):
        raise fail(f"history 'keys' {keys!r} does not match its datasets {sorted(hg)}")
    columns = {}
    for k in keys:
        ds = hg[k]
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 1 or ds.dtype.kind not in "iuf":
            raise fail(f"history {k!r} is not a 1-D numeric dataset")
        _check_stored(ds, f"history {k!r}", fail)
        columns[k] = ds
    lengths = {len(ds) for ds in columns.values()}
    if len(lengths) > 1:
        raise fail(f"history columns have different lengths {sorted(lengths)}")
    columns = {k: ds[()].tolist() for k, ds in columns.items()}
    n = lengths.pop() if lengths else 0
    return [{k: col[i] for k, col in columns.items()} for i in range(n)]


def load(path: str | os.PathLike, device: Any = None, optimizer: Any = None) -> Sequential:
    """The model saved at `path`, with `model.history`, `model.metadata` and `model.rng_state` set.

    If `optimizer` is given it is pointed at the loaded model's parameters and its saved state
    (buffers, steps, hyperparameters) is loaded; its type must match the saved one.
    """
    ckpt = read(path, device=device)
    model = ckpt.model
    model.history, model.metadata, model.rng_state = ckpt.history, ckpt.metadata, ckpt.rng_state
    if optimizer is not None:
        state = ckpt.optimizer_state
        if state is None:
            raise CheckpointError(f"checkpoint {ckpt.path}: holds no optimizer state to load")
        if state["type"] != type(optimizer).__name__:
            raise CheckpointError(f"checkpoint {ckpt.path}: holds {state['type']} state, cannot load it "
                                  f"into a {type(optimizer).__name__}")
        params = list(model.parameters())
        if len(params) != len(optimizer.params):
            raise CheckpointError(f"checkpoint {ckpt.path}: the optimizer has {len(optimizer.params)} "
                                  f"parameters, the saved model {len(params)}")
        optimizer.params = params
        try:
            optimizer.load_state_dict(state)
        except ValueError as exc:
            raise CheckpointError(f"checkpoint {ckpt.path}: {exc}") from None
    return model
