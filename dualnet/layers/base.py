"""The Layer base class and the argument validators every layer shares (Parameter: parameter.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..backend import Device, check_same_device, get_device, get_device_object, on_device, to_device
from ..errors import UsageError, positive_int
from .flat import zero_grads
from .grad_mode import grad_enabled
from .parameter import Parameter
from .walk import walk


def _pair(value: Any, what: str, layer: str, minimum: int) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, each >= minimum; ValueError names the layer."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else value
    ok = (isinstance(pair, (tuple, list)) and len(pair) == 2
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair))
    if not ok or isinstance(value, bool):
        raise UsageError(f"{layer}: {what} must be an int or an (h, w) pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise UsageError(f"{layer}: {what} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _positive_int(value: Any, what: str, layer: str) -> int:
    return positive_int(value, what, layer, noun="int")


class _LayerType(type):
    """The metaclass of layers: when the outermost `__init__` of a layer has returned, every
    Parameter the layer holds must be one its `parameters()` finds (see `hidden_parameters`)."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        layer = super().__call__(*args, **kwargs)
        if not hasattr(layer, "device"):
            raise UsageError(f"{cls.__name__}.__init__ did not call super().__init__(), which gives a layer its "
                             "device, mode and name; call it first in __init__")
        for attr, p in layer.own_parameters():
            p.name = p.name or attr  # named after the attribute that holds it
        hidden = hidden_parameters(layer)
        if hidden:
            where, p = hidden[0]
            raise UsageError(f"{cls.__name__}: attribute {where} holds {p!r}, which parameters() does not find, so "
                             "it would never be trained, saved or gradient-checked; hold each Parameter in a public "
                             "attribute or directly in a list, tuple or str-keyed dict attribute (or override "
                             "own_parameters())")
        return layer


def hidden_parameters(layer: Layer) -> list[tuple[str, Parameter]]:
    """(attribute path, Parameter) of every Parameter `layer` holds, at any depth of its attributes
    (private ones included), lists, tuples, sets, dicts and sub-layers, that `layer.parameters()`
    does not list."""
    held: list[tuple[tuple, Parameter]] = []
    _every_parameter(layer, (), set(), held)
    if not held:  # most layers hold none: parameters() need not be walked (building stays cheap)
        return []
    found = {id(p) for p in layer.parameters()}
    return [(".".join(map(str, where)), p) for where, p in held if id(p) not in found]


_HOLDERS = (dict, list, tuple, set, frozenset)
#: attribute types that never are or hold a Parameter or a Layer
_PLAIN = frozenset({str, bool, int, float, type(None), np.ndarray, Device})


def _every_parameter(obj: Any, where: tuple, seen: set[int], out: list[tuple[tuple, Parameter]]) -> None:
    """Append (path of keys, Parameter) for every Parameter reachable from `obj` (a layer or a
    container); a path is a tuple, joined only for the few that are reported."""
    seen.add(id(obj))
    items: Any = vars(obj).items() if isinstance(obj, Layer) else obj.items() if isinstance(obj, dict) \
        else enumerate(obj)
    for key, value in items:
        if type(value) in _PLAIN:
            continue
        if isinstance(value, Parameter):
            out.append(((*where, key), value))
        elif (isinstance(value, Layer) or isinstance(value, _HOLDERS)) and id(value) not in seen:
            _every_parameter(value, (*where, key), seen, out)


class Layer(metaclass=_LayerType):
    """Base layer: parameters, buffers, sub-layers, train/eval mode, device and dtype moves.

    Parameters are found, not declared: by default `own_parameters()` lists every `Parameter`
    held as a public attribute (directly, or as an item of a list, tuple or str-keyed dict
    attribute, named "attr.i" / "attr.key"), in attribute order, and `children()` every sub-layer
    held the same way. So a custom layer that sets `self.scale = Parameter(...)` is trained,
    moved, cast, saved and gradient-checked with no second declaration; a container that holds
    layers as attributes (Residual's `body` and `shortcut`) reaches theirs. A layer that holds a
    Parameter anywhere else (a private attribute, a list inside a list, a set) raises ValueError
    naming it when its construction ends, since that Parameter would silently never be trained.

    Buffers are non-trainable state (BatchNorm's running statistics): arrays named once by
    `register_buffer`, listed by `own_buffers()` / `named_buffers()`, moved by `to()` and cast
    by `astype()` (floating-point buffers only) like parameters, but never given a gradient.
    """

    kind = "layer"  # prefix of automatic names in Sequential (conv1, pool1, fc1, ...)
    #: what the last training-mode forward kept for backward (None: nothing to differentiate)
    _cache: Any = None
    #: attribute names of this layer's buffers, in registration order (see register_buffer)
    _buffer_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.training = True
        self.device: Device = get_device()
        self.name = type(self).__name__

    def __getattr__(self, name: str) -> Any:
        # only reached when normal lookup fails: say why the attributes Layer.__init__ sets are missing
        if name in ("device", "training", "name"):
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}: its __init__ must call "
                                 "super().__init__() before using the layer")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # the protocol
    def forward(self, x: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:  # pragma: no cover - abstract
        """dy: dL/d(output) -> dL/d(input), or None if not need_input_grad (parameter gradients
        are still added); every layer has this signature."""
        raise NotImplementedError

    def backward_add(self, dy: Any, addend: Any) -> Any:
        """dL/d(input) + addend (same shape as the input, read only): the backward of a layer whose
        input also feeds another path (a residual block's body and shortcut), with the other path's
        gradient summed in. This default adds after `backward`; a layer whose backward op can write
        the sum in the same pass overrides it (Conv2d: the input-gradient kernel adds it), so the
        sum costs no pass of its own. Parameter gradients are added as by `backward`."""
        return self.backward(dy) + addend

    @on_device  # the layer's own array code (outside the ops) allocates on its GPU
    def __call__(self, x: Any) -> Any:
        return self.forward(x)

    # --- what a layer holds ------------------------------------------------------------------

    def _held(self, cls: type) -> list[tuple[str, Any]]:
        """(name, value) of every attribute that is a `cls`, or a list/tuple item or str-keyed dict
        value that is one (named "attr.i", "attr.key"), in attribute order; private attributes
        (caches, plans) are skipped."""
        found: list[tuple[str, Any]] = []
        for key, value in vars(self).items():
            # most attributes are plain values: one set look-up each (a model of 10**5 layers asks often)
            if type(value) in _PLAIN or key[0] == "_":
                continue
            if isinstance(value, cls):
                found.append((key, value))
            elif isinstance(value, (list, tuple)):
                found += [(f"{key}.{i}", v) for i, v in enumerate(value) if isinstance(v, cls)]
            elif isinstance(value, dict):
                found += [(f"{key}.{k}", v) for k, v in value.items() if isinstance(k, str) and isinstance(v, cls)]
        return found

    def own_parameters(self) -> list[tuple[str, Parameter]]:
        """This layer's own parameters (not its sub-layers'): see the class docstring."""
        return self._held(Parameter)

    def children(self) -> list[tuple[str, Layer]]:
        """Sub-layers as (name, layer): Layer attributes in attribute order (containers override)."""
        return self._held(Layer)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Every parameter of this layer and its sub-layers at any depth, named by path ("body.fc1.weight")."""
        for path, layer in walk(self, include_self=True):
            for name, p in layer.own_parameters():
                yield f"{prefix}{path}.{name}" if path else prefix + name, p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def register_buffer(self, name: str, value: Any) -> None:
        """Hold `value` (an array on this layer's device) as buffer `name`: an attribute that
        `to()` moves and `astype()` casts, listed by `named_buffers()`."""
        if not name.isidentifier() or name.startswith("_"):
            raise UsageError(f"{self.name}: buffer name {name!r} must be a public identifier")
        setattr(self, name, value)
        if name not in self._buffer_names:
            self._buffer_names = (*self._buffer_names, name)

    def own_buffers(self) -> list[tuple[str, Any]]:
        return [(name, getattr(self, name)) for name in self._buffer_names]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """Every buffer of this layer and its sub-layers, named like parameters ("bn1.running_mean")."""
        for path, layer in walk(self, include_self=True):
            for name, b in layer.own_buffers():
                yield f"{prefix}{path}.{name}" if path else prefix + name, b

    def buffer_problem(self, name: str, value: Any) -> str | None:
        """Why `value` (a host array read from a file) cannot be this layer's buffer `name`, in
        words; None when it can. Shapes, dtypes and finiteness are checked by the reader."""
        return None

    def config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this layer (stored in checkpoints)."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any], build: Any) -> Layer:
        """Rebuild from `config()`. `build(entry)` rebuilds a nested layer entry ({"type", "name",
        "config"}); containers use it, plain layers take their arguments (lists as tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one output example for one input example of `shape` (no batch axis)."""
        return shape

    @on_device  # a fill is a kernel: it runs on the parameters' GPU
    def zero_grad(self) -> None:
        """Zero every gradient of this layer (and its sublayers): one fill per whole flat buffer."""
        zero_grads(self.parameters())

    def train(self, mode: bool = True) -> Layer:
        self.training = mode
        for _, child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Layer:
        return self.train(False)

    def freeze(self) -> Layer:
        """Set requires_grad False on every parameter of this layer and its sub-layers: backward
        adds no gradient into them and optimizers leave them unchanged. Returns the layer."""
        for p in self.parameters():
            p.requires_grad = False
        return self

    def unfreeze(self) -> Layer:
        """Undo freeze(): every parameter of this layer and its sub-layers trains again."""
        for p in self.parameters():
            p.requires_grad = True
        return self

    @staticmethod
    def _records() -> bool:
        """Whether this forward keeps what backward needs: always, except under dn.no_grad()
        (eval mode keeps it too, so a trained model can be differentiated)."""
        return grad_enabled()

    def to(self, name: str | Device) -> Layer:
        """Move parameters (their gradients and optimizer state), buffers and sub-layers to a device."""
        dev = get_device_object(name)
        for _, p in self.own_parameters():  # the sub-layers move their own, below
            if p.device != dev:
                p.rehome(to_device(p.data, dev), to_device(p.grad, dev), dev)
                p.state = {k: to_device(v, dev) for k, v in p.state.items()}
        for key, b in self.own_buffers():
            setattr(self, key, to_device(b, dev))
        for _, child in self.children():
            child.to(dev)
        self.device = dev
        self._cache = None
        return self

    @on_device  # the casts are allocated on the parameters' GPU
    def astype(self, dtype: Any) -> Layer:
        """Cast parameters, gradients and floating-point buffers (float32 to train, float64 for
        gradient checks); integer buffers (counters) keep their type."""
        for _, p in self.own_parameters():  # the sub-layers cast their own, below
            if p.data.dtype != dtype:
                p.rehome(p.data.astype(dtype), p.grad.astype(dtype))
                p.state = {k: v.astype(dtype) for k, v in p.state.items()}
        for key, b in self.own_buffers():
            if b.dtype.kind == "f":
                setattr(self, key, b.astype(dtype))
        for _, child in self.children():
            child.astype(dtype)
        return self

    @property
    def ops(self) -> Any:
        return self.device.ops

    def _check_input(self, x: Any, ndim: int, what: str) -> None:
        if getattr(x, "ndim", None) != ndim:
            raise UsageError(f"{self.name}: expected a {ndim}-D input {what}, got shape "
                             f"{tuple(getattr(x, 'shape', ()))}")
        if x.dtype.kind != "f":
            raise UsageError(f"{self.name}: expected a floating-point input, got dtype {x.dtype}")
        own = self.own_parameters()
        if own:
            weight = own[0][1].data
            if not (type(x) is np.ndarray and type(weight) is np.ndarray):  # both on the host: fine
                check_same_device(self.name, input=x, weight=weight)
            if weight.dtype != x.dtype:
                raise UsageError(f"{self.name}: input dtype {x.dtype} differs from parameter dtype "
                                 f"{weight.dtype}; cast one of them (model.astype(...))")

    def _need_cache(self) -> Any:
        cache = getattr(self, "_cache", None)
        if cache is None:
            raise RuntimeError(f"{self.name}: backward() called without a forward() to differentiate (none ran, "
                               "or it ran under dn.no_grad()); run forward outside no_grad() first")
        return cache

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class WeightedLayer(Layer):
    """A layer with a `weight` and an optional per-output `bias` (Conv2d, Linear)."""

    def _init_parameters(self, weight: Any, out_features: int, bias: bool, dtype: Any) -> None:
        """weight: the initialised host array; bias starts at zero."""
        self.weight = Parameter(to_device(weight, self.device), "weight", self.device)
        self.bias = (Parameter(to_device(np.zeros(out_features, dtype), self.device), "bias", self.device)
                     if bias else None)
        self._cache = None

    def own_parameters(self) -> list[tuple[str, Parameter]]:
        return [("weight", self.weight)] + ([("bias", self.bias)] if self.bias is not None else [])

    def bias_data(self) -> Any:
        """The bias array, or None for a layer built with bias=False."""
        return self.bias.data if self.bias is not None else None

    def grad_buffers(self) -> tuple[Any, Any]:
        """(weight gradient, bias gradient) a backward adds into, each None when that parameter is
        frozen (requires_grad False) or, for the bias, absent. The one way Conv2d, Linear and their
        fused steps add parameter gradients: their backward ops take these buffers and add into
        them (on the GPU, the weight gradient's product writes into its buffer: beta = 1)."""
        w, b = self.weight, self.bias
        return (w.grad if w.requires_grad else None,
                b.grad if b is not None and b.requires_grad else None)


def layer_entry(layer: Layer) -> dict[str, Any]:
    """The config entry of one layer: {"type": class name, "name": ..., "config": ...}."""
    return {"type": type(layer).__name__, "name": layer.name, "config": layer.config()}
