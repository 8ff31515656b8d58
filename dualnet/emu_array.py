"""The "emu" device's arrays and array module: NumPy buffers that behave like CuPy arrays where
a host leak would hide.

On a GPU, `np.asarray(cupy_array)` raises TypeError and so does an op mixing a host
`numpy.ndarray` into device arrays (`cupy.add(d, h)`, `d + h`); plain NumPy arrays on "emu"
would let both pass, so code that fails on first contact with a GPU would pass CI. `EmuArray`
wraps a NumPy array (it is not an ndarray subclass: `np.asarray` of a subclass never asks it)
and follows CuPy's rules:

- implicit conversion (`np.asarray(a)`, `np.array(a)`, `a.__array__()`) raises TypeError with
  CuPy's message; explicit moves work: `a.get()`, `dn.to_numpy(a)`, `dn.to_device(a, "cpu")`;
- a host `numpy.ndarray` as an operand of an op, a function of `xp` or a value assigned into an
  emu array raises TypeError (Python and NumPy scalars are fine, as on CuPy);
- reductions and element access return 0-d device arrays; `float(a)`, `int(a)`, `bool(a)`,
  `a.item()`, `a.tolist()` are explicit (they sync on a GPU) and allowed;
- `xp.asarray` / `xp.array` of a host array copies it to the device, as `cupy.asarray` does;
  host index arrays are accepted, as CuPy accepts them.

One rule is stricter than CuPy's: CuPy routes `np.where(d, ...)` to `cupy.where` through
`__array_function__` and NumPy ufuncs through `__array_ufunc__`, so some stray `np.` calls run
on a GPU, but the same call fails there as soon as CuPy lacks the function or a host array
joins in. dualnet's rule is that array code uses the device's module (`dn.get_device().xp`,
`self.ops.xp`), and emu enforces it: every NumPy function or ufunc called on an emu array raises
TypeError naming the function and the fix.

`EMU` is the array module of device "emu" (the `xp` of EmulatedOps): NumPy's namespace with
emu arrays unwrapped on the way in, host arrays refused, and results wrapped on the way out.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["EmuArray", "EMU", "EmuModule", "is_emu", "to_host", "from_host", "unwrap", "define_operators",
           "IMPLICIT_CONVERSION"]

#: CuPy's own words (cupy/_core/core.pyx, ndarray.__array__), so that code catching CuPy's
#: refusal by its message behaves the same on emu
IMPLICIT_CONVERSION = ("Implicit conversion to a NumPy array is not allowed. "
                       "Please use `.get()` to construct a NumPy array explicitly.")

#: functions of the array module that take host data and copy it to the device
_HOST_TO_DEVICE = frozenset({"asarray", "array", "asanyarray"})


def _host_operand(where: str) -> TypeError:
    return TypeError(f"{where}: a host numpy.ndarray was mixed into an op on 'emu' device arrays "
                     "(CuPy raises TypeError: Unsupported type <class 'numpy.ndarray'>); move it "
                     "explicitly with dn.to_device(array, 'emu') or use the device's array module")


def _unwrap(value: Any, where: str) -> Any:
    """An operand as NumPy sees it: emu arrays unwrapped, host arrays refused, sequences walked."""
    t = type(value)
    if t is EmuArray:
        return value._a
    if t is np.ndarray:
        raise _host_operand(where)
    if t is tuple or t is list:
        return t(_unwrap(v, where) for v in value)
    return value


def _unwrap_index(key: Any) -> Any:
    """An index: emu arrays unwrapped; host index arrays pass, as CuPy converts them."""
    t = type(key)
    if t is EmuArray:
        return key._a
    if t is tuple:
        return tuple(k._a if type(k) is EmuArray else k for k in key)
    return key


def _wrap(result: Any) -> Any:
    """A NumPy result as a device result: arrays and NumPy scalars become emu arrays (CuPy's
    reductions return 0-d device arrays); tuples are walked; anything else passes."""
    t = type(result)
    if t is np.ndarray:
        return EmuArray(result)
    if isinstance(result, np.generic):
        return EmuArray(np.asarray(result))
    if t is tuple or t is list:
        return t(_wrap(r) for r in result)
    return result


class EmuArray:
    """An array of device "emu": a NumPy buffer behind CuPy's rules (see the module docstring).

    Shapes, dtypes, strides, views and arithmetic are NumPy's; only the crossings between host
    and device are policed.
    """

    __slots__ = ("_a",)
    __array_priority__ = 100
    # NumPy ufuncs on emu arrays are refused (NumPy raises TypeError), and NumPy's binary
    # operators defer to ours, where a host operand is refused with a message
    __array_ufunc__ = None
    __hash__ = None  # type: ignore[assignment]  # elementwise == makes arrays unhashable

    def __init__(self, a: np.ndarray) -> None:
        self._a = a

    # --- the host/device boundary --------------------------------------------------------

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(IMPLICIT_CONVERSION)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        name = f"{getattr(func, '__module__', 'numpy')}.{getattr(func, '__name__', func)}"
        raise TypeError(f"{name} was called on an 'emu' device array: NumPy functions do not run on "
                        "device arrays (on a GPU they fail as soon as CuPy lacks the function or a "
                        "host array joins in); use the device's array module (xp = "
                        "dn.get_device().xp, or self.ops.xp in a layer), or move the array "
                        "explicitly with dn.to_numpy(array)")

    def get(self, stream: Any = None, order: Any = "C", out: Any = None, blocking: bool = True) -> np.ndarray:
        """A host copy, as `cupy.ndarray.get()` (never a view: host writes must not reach the device)."""
        if out is not None:
            np.copyto(out, self._a)
            return out
        return np.array(self._a, order=order, copy=True)

    def item(self) -> Any:
        return self._a.item()

    def tolist(self) -> Any:
        return self._a.tolist()

    def tobytes(self, order: Any = "C") -> bytes:
        return self._a.tobytes(order)

    def __float__(self) -> float:
        return float(self._a)

    def __int__(self) -> int:
        return int(self._a)

    def __complex__(self) -> complex:
        return complex(self._a)

    def __bool__(self) -> bool:
        return bool(self._a)

    def __repr__(self) -> str:
        return f"{self._a!r} (on device 'emu')"

    __str__ = __repr__

    def __reduce__(self) -> tuple:
        return (from_host, (self.get(),))

    def __copy__(self) -> EmuArray:
        return EmuArray(self._a.copy())

    def __deepcopy__(self, memo: dict) -> EmuArray:
        return EmuArray(self._a.copy())

    # --- attributes ----------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self._a.shape

    @property
    def dtype(self) -> np.dtype:
        return self._a.dtype

    @property
    def size(self) -> int:
        return self._a.size

    @property
    def ndim(self) -> int:
        return self._a.ndim

    @property
    def strides(self) -> tuple[int, ...]:
        return self._a.strides

    @property
    def itemsize(self) -> int:
        return self._a.itemsize

    @property
    def nbytes(self) -> int:
        return self._a.nbytes

    @property
    def flags(self) -> Any:
        return self._a.flags

    @property
    def T(self) -> EmuArray:
        return EmuArray(self._a.T)

    @property
    def base(self) -> Any:
        return None if self._a.base is None else _wrap(self._a.base)

    def __getattr__(self, name: str) -> Any:
        # only methods of ndarray not defined below reach here; host-side doors stay shut
        if name.startswith("__") or name in ("_a", "ctypes", "data", "tofile", "dump", "dumps"):
            raise AttributeError(f"'emu' device arrays have no attribute {name!r}")
        attr = getattr(self._a, name)
        if callable(attr):
            return _method(attr, f"EmuArray.{name}")
        return _wrap(attr)

    # --- container protocol --------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self) -> Iterator[EmuArray]:
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (EmuArray(np.asarray(self._a[i])) for i in range(len(self._a)))

    def __getitem__(self, key: Any) -> EmuArray:
        return _wrap(self._a[_unwrap_index(key)])

    def __setitem__(self, key: Any, value: Any) -> None:
        self._a[_unwrap_index(key)] = _unwrap(value, "assignment into an emu array")


def _method(bound: Callable[..., Any], where: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return _wrap(bound(*_unwrap(args, where), **{k: _unwrap(v, where) for k, v in kwargs.items()}))
    return call


def _define_methods() -> None:
    """The frequent ndarray methods as real methods (the __getattr__ path is slower)."""
    for name in ("reshape", "transpose", "sum", "max", "min", "mean", "astype", "copy", "ravel",
                 "argmax", "argmin", "any", "all", "fill", "clip", "take", "squeeze", "prod",
                 "var", "std", "dot", "view", "flatten", "cumsum", "swapaxes", "nonzero", "repeat"):
        fn = getattr(np.ndarray, name)

        def method(self: EmuArray, *args: Any, _fn: Any = fn, _name: str = name, **kwargs: Any) -> Any:
            where = f"EmuArray.{_name}"
            return _wrap(_fn(self._a, *_unwrap(args, where), **{k: _unwrap(v, where) for k, v in kwargs.items()}))
        method.__name__ = name
        setattr(EmuArray, name, method)


#: The operators of a CuPy-like array and the NumPy function each one is (`a.__add__(b)` is
#: `np.add(a, b)`, `a.__radd__(b)` is `np.add(b, a)`). dualnet's emu arrays and the tests' CuPy
#: stand-ins (tests/standins/) install theirs from this table with `define_operators`.
BINARY_OPERATORS: dict[str, Any] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.true_divide, "floordiv": np.floor_divide,
    "mod": np.remainder, "pow": np.power, "matmul": np.matmul, "and": np.bitwise_and, "or": np.bitwise_or,
    "xor": np.bitwise_xor, "lshift": np.left_shift, "rshift": np.right_shift, "divmod": np.divmod}
COMPARISONS: dict[str, Any] = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
                               "eq": np.equal, "ne": np.not_equal}
UNARY_OPERATORS: dict[str, Any] = {"neg": np.negative, "pos": np.positive, "abs": np.absolute, "invert": np.invert}


def define_operators(cls: type, binary: Callable[[Any, bool, str], Any], inplace: Callable[[Any, str], Any],
                     unary: Callable[[Any, str], Any]) -> None:
    """Give `cls` every operator of the tables above: `__op__` and `__rop__` from `binary(fn,
    reflected, name)` (comparisons: `__op__` only), `__iop__` from `inplace(fn, name)` (not for
    divmod), `__op__` of the unary ones from `unary(fn, name)`; `fn` is the NumPy function and
    `name` the dunder name being defined. A factory that returns None leaves that operator out."""
    made = [(f"__{op}__", binary(fn, False, f"__{op}__")) for op, fn in {**BINARY_OPERATORS, **COMPARISONS}.items()]
    made += [(f"__r{op}__", binary(fn, True, f"__r{op}__")) for op, fn in BINARY_OPERATORS.items()]
    made += [(f"__i{op}__", inplace(fn, f"__i{op}__")) for op, fn in BINARY_OPERATORS.items() if op != "divmod"]
    made += [(f"__{op}__", unary(fn, f"__{op}__")) for op, fn in UNARY_OPERATORS.items()]
    for name, method in made:
        if method is not None:
            setattr(cls, name, method)


def _unary(fn: Any, name: str) -> Callable[[EmuArray], Any]:
    def op(self: EmuArray) -> Any:
        return _wrap(fn(self._a))
    op.__name__ = name
    return op


def _binary(fn: Any, reflected: bool, name: str) -> Callable[[EmuArray, Any], Any]:
    def op(self: EmuArray, other: Any) -> Any:
        t = type(other)
        if t is EmuArray:
            value = other._a
        elif t is np.ndarray:
            raise _host_operand(f"operator {name}")
        elif isinstance(other, (int, float, complex, bool, np.generic)):
            value = other
        else:
            return NotImplemented
        return _wrap(fn(value, self._a) if reflected else fn(self._a, value))
    op.__name__ = name
    return op


def _inplace(fn: Any, name: str) -> Callable[[EmuArray, Any], Any]:
    def op(self: EmuArray, other: Any) -> Any:
        t = type(other)
        if t is EmuArray:
            fn(self._a, other._a, out=self._a)
        elif t is np.ndarray:
            raise _host_operand(f"operator {name}")
        elif isinstance(other, (int, float, complex, bool, np.generic)):
            fn(self._a, other, out=self._a)
        else:
            return NotImplemented
        return self
    op.__name__ = name
    return op


_define_methods()
define_operators(EmuArray, _binary, _inplace, _unary)


class EmuModule:
    """NumPy's namespace for emu arrays (`EMU`, and its submodules such as `EMU.linalg`).

    Functions unwrap emu arguments, refuse host arrays (but `asarray`/`array` copy them to the
    device, as CuPy's do) and wrap what they return; dtypes, constants and classes pass as they
    are. Wrappers are built once per name.
    """

    def __init__(self, module: types.ModuleType) -> None:
        self._module = module
        self._cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<emu array module over {self._module.__name__}>"

    def __getattr__(self, name: str) -> Any:
        cache = self.__dict__["_cache"]
        if name in cache:
            return cache[name]
        value = getattr(self._module, name)
        if isinstance(value, types.ModuleType):
            out: Any = EmuModule(value)
        elif callable(value) and not isinstance(value, type):
            out = _function(value, f"{self._module.__name__}.{name}", name in _HOST_TO_DEVICE)
        else:
            out = value
        cache[name] = out
        return out


def _function(fn: Callable[..., Any], where: str, host_ok: bool) -> Callable[..., Any]:
    if host_ok:
        def to_device(obj: Any, *args: Any, **kwargs: Any) -> Any:
            if type(obj) is EmuArray:
                obj = obj._a
            elif isinstance(obj, np.ndarray):
                # a transfer is a copy: later host writes must not reach the device array
                obj = obj.copy()
            return EmuArray(np.asarray(fn(obj, *args, **kwargs)))
        return to_device

    def call(*args: Any, **kwargs: Any) -> Any:
        return _wrap(fn(*_unwrap(args, where), **{k: _unwrap(v, where) for k, v in kwargs.items()}))
    call.__name__ = getattr(fn, "__name__", "function")
    return call


#: the array module of device "emu"
EMU = EmuModule(np)


def is_emu(a: Any) -> bool:
    return type(a) is EmuArray


def from_host(a: Any) -> EmuArray:
    """Copy host data (a NumPy array, a scalar, a list) to device "emu"."""
    return EmuArray(np.array(a, copy=True))


def to_host(a: EmuArray) -> np.ndarray:
    """A host copy of an emu array (`a.get()`)."""
    return a.get()


def unwrap(a: EmuArray) -> np.ndarray:
    """The NumPy buffer behind an emu array, shared, not copied: for the kernel emulator, which
    plays the GPU reading and writing device memory."""
    return a._a
