"""Argument binding, shared by both launchers: every argument of a kernel call checked against its
declaration in the table (dtype, scalar width, element count, contiguity, aliasing) and converted to
the exact C type, plus the launch-size helpers. See signatures.py for the declarations.

Two paths: `bind` checks everything and explains every failure (the emulator, and the CuPy
launcher in debug mode); `FastPlan.bind` is the CuPy launcher's hot path, precomputed once per
(kernel, dtype): it checks kind, dtype, element count and contiguity of each array and the range of
each scalar with plain comparisons, and hands any argument it does not accept to `bind`, so that
every error message is the same. It skips the aliasing check (an interval test per pair).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import KernelArgTypeError, KernelArgValueError, KernelLaunchError
from .signatures import TYPE_DTYPES, Kernel, Param

_FLOAT_MAX = {np.dtype(np.float32): float(np.finfo(np.float32).max),
              np.dtype(np.float64): float(np.finfo(np.float64).max)}


@dataclass
class Bound:
    """A checked call: values converted to their exact declared types."""

    kernel: Kernel
    t: str                   # template type, "float" or "double"
    dtype: np.dtype
    values: list[Any]        # arrays as given; scalars as np.int32 / np.int64 / np.float32 / ...
    scalars: dict[str, int]  # integer scalar values by name (used by the count expressions)
    counts: dict[str, int]   # pointer parameter name -> declared element count
    size: int                # launch size

    @property
    def instantiation(self) -> str:
        return self.kernel.name_expression(self.t)


def template_type(kernel: Kernel, dtype: Any) -> tuple[str, np.dtype]:
    """Map a dtype (np.float32, "float64", ...) to the kernel's template type name."""
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise KernelArgTypeError(f"kernel {kernel.name}: {dtype!r} is not a dtype") from e
    for t in kernel.types:
        if TYPE_DTYPES[t] == dt:
            return t, dt
    allowed = ", ".join(str(TYPE_DTYPES[t]) for t in kernel.types)
    raise KernelArgTypeError(f"kernel {kernel.name}: no instantiation for dtype {dt} "
                             f"(available: {allowed})")


def _is_array(v: Any) -> bool:
    return hasattr(v, "dtype") and hasattr(v, "shape") and not isinstance(v, np.generic)


def _cast_scalar(kernel: Kernel, t: str, p: Param, v: Any) -> Any:
    dt = p.dtype(t)
    where = f"kernel {kernel.name}<{t}>, parameter {p.name} ({p.ctype})"
    if isinstance(v, np.generic):
        if v.dtype != dt:
            raise KernelArgTypeError(f"{where}: expected a scalar of type {dt}, got {v.dtype} ({v!r}); "
                                     f"pass a Python number or np.{dt.name}")
        return v
    if _is_array(v):
        raise KernelArgTypeError(f"{where}: expected a scalar, got an array of shape "
                                 f"{tuple(v.shape)}")
    if dt.kind == "i":
        if not isinstance(v, int):
            raise KernelArgTypeError(f"{where}: expected an int, got {type(v).__name__} ({v!r})")
        info = np.iinfo(dt)
        if not info.min <= v <= info.max:
            raise KernelArgValueError(f"{where}: {v} does not fit in {dt} "
                                      f"[{info.min}, {info.max}]")
        return dt.type(v)
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float)):
        raise KernelArgTypeError(f"{where}: expected a real number, got {type(v).__name__} "
                                 f"({v!r})")
    try:
        with np.errstate(over="ignore"):
            out = dt.type(v)
        overflow = math.isfinite(v) and not np.isfinite(out)
    except OverflowError:
        overflow = True
    if overflow:
        raise KernelArgValueError(f"{where}: {v!r} overflows {dt}")
    return out


def bind(kernel: Kernel, dtype: Any, args: Sequence[Any], array_type: type | tuple[type, ...],
         array_module: str) -> Bound:
    """Check ``args`` against the kernel's declaration and cast the scalars.

    Shared by both launchers (``array_type`` is ``cupy.ndarray`` or ``numpy.ndarray``).  Raises
    KernelArgTypeError for a wrong kind of argument, dtype or scalar width, and KernelArgValueError
    for a wrong size, a non-C-contiguous or read-only output array, or an out-of-range scalar.
    """
    t, dt = template_type(kernel, dtype)
    params = kernel.params
    if len(args) != len(params):
        raise KernelArgTypeError(f"kernel {kernel.name} takes {len(params)} arguments "
                                 f"{kernel.signature()}, got {len(args)}")
    values: list[Any] = [None] * len(params)
    scalars: dict[str, int] = {}
    for i, (p, v) in enumerate(zip(params, args)):
        if not p.is_pointer:
            values[i] = _cast_scalar(kernel, t, p, v)
            if p.base != "T":
                scalars[p.name] = int(values[i])
    counts: dict[str, int] = {}
    for i, (p, arg) in enumerate(zip(params, args)):
        if not p.is_pointer:
            continue
        where = f"kernel {kernel.name}<{t}>, parameter {p.name} ({p.ctype}, {p.role})"
        if not isinstance(arg, array_type):
            raise KernelArgTypeError(f"{where}: expected a {array_module} array, got "
                                     f"{type(arg).__module__}.{type(arg).__name__}")
        arr: Any = arg  # an ndarray-like of array_type (a tuple of types defeats narrowing)
        want = p.dtype(t)
        if arr.dtype != want:
            raise KernelArgTypeError(f"{where}: expected dtype {want}, got {arr.dtype}")
        n = kernel.count(p, scalars)
        if arr.size != n:
            raise KernelArgValueError(f"{where}: expected {n} elements ({p.count} with "
                                      f"{_mention(p.count or '', scalars)}), got {arr.size} "
                                      f"(shape {tuple(arr.shape)})")
        if not arr.flags.c_contiguous:
            raise KernelArgValueError(f"{where}: array is not C-contiguous (strides "
                                      f"{arr.strides}); pass ascontiguousarray(...)")
        if p.role != "in" and not getattr(arr.flags, "writeable", True):
            raise KernelArgValueError(f"{where}: array is read-only")
        counts[p.name] = n
        values[i] = arr
    _check_aliasing(kernel, t, values)
    size = kernel.launch_size(scalars)
    if size < 0:
        raise KernelArgValueError(f"kernel {kernel.name}: negative launch size {size} "
                                  f"({kernel.size} with {_mention(kernel.size, scalars)})")
    return Bound(kernel, t, dt, values, scalars, counts, size)


def _extent(v: Any) -> tuple[int, int] | None:
    """[start, end) byte addresses of an array (NumPy or CuPy), None if unknown or empty."""
    iface = getattr(v, "__cuda_array_interface__", None) or getattr(v, "__array_interface__", None)
    if not iface or not getattr(v, "nbytes", 0):
        return None
    start = iface["data"][0]
    return start, start + v.nbytes


def _check_aliasing(kernel: Kernel, t: str, values: list[Any]) -> None:
    """Written arrays must not overlap any other array argument (kernel pointers are restrict)."""
    arrays = [(p, _extent(v)) for p, v in zip(kernel.params, values) if p.is_pointer]
    for i, (p, a) in enumerate(arrays):
        for q, b in arrays[i + 1:]:
            written = p.role != "in" or q.role != "in"
            if written and a and b and a[0] < b[1] and b[0] < a[1]:
                raise KernelArgValueError(
                    f"kernel {kernel.name}<{t}>: parameters {p.name} ({p.role}) and {q.name} "
                    f"({q.role}) overlap in memory; arrays a kernel writes must not alias its "
                    "other arguments")


def _mention(expr: str, scalars: Mapping[str, int]) -> str:
    names = [n for n in scalars if n in {x.id for x in ast.walk(ast.parse(expr))
                                         if isinstance(x, ast.Name)}]
    return ", ".join(f"{n}={scalars[n]}" for n in names) or "no scalars"


def grid_size(size: int, block: int, max_blocks: int) -> int:
    """Blocks to launch for ``size`` grid-stride elements: min(ceil(size / block), max_blocks)."""
    return min(-(-size // block), max_blocks)


#: a GPU's launch limits (compute capability 7.0 and later)
MAX_THREADS_PER_BLOCK = 1024
MAX_GRID = (2**31 - 1, 65535, 65535)


def launch_shape(kernel: Kernel, scalars: Mapping[str, int], size: int, block: int,
                 max_blocks: int) -> tuple[tuple[int, int, int], int]:
    """((grid x, y, z), threads per block) of one launch, checked against a GPU's limits.

    Grid-stride kernels: (min(ceil(size / block), max_blocks), 1, 1) blocks of the launcher's
    block; cooperative kernels: their declared grid and block. A grid with a zero dimension means
    nothing to run (the launchers skip it). Raises KernelLaunchError where a GPU would refuse.
    """
    if kernel.block is None:
        return (grid_size(size, block, max_blocks), 1, 1), block
    grid = kernel.grid_dims(scalars)
    check_launch_limits(kernel.name, grid, kernel.block)
    return grid, kernel.block


def check_launch_limits(name: str, grid: tuple[int, int, int], block: int) -> None:
    if not 1 <= block <= MAX_THREADS_PER_BLOCK:
        raise KernelLaunchError(f"kernel {name}: {block} threads per block; a GPU allows 1 to "
                                f"{MAX_THREADS_PER_BLOCK}: declare a smaller block in signatures.py")
    for axis, n, most in zip("xyz", grid, MAX_GRID):
        if not 0 <= n <= most:
            raise KernelLaunchError(f"kernel {name}: grid {axis} dimension {n} is outside [0, {most}] "
                                    f"(grid {grid}); split the launch or move the work to another axis")


def check_launch_config(block: int, max_blocks: int) -> None:
    if not (isinstance(block, int) and 1 <= block <= 1024):
        raise ValueError(f"block must be an int in [1, 1024], got {block!r}")
    if not (isinstance(max_blocks, int) and 1 <= max_blocks <= 2**31 - 1):
        raise ValueError(f"max_blocks must be an int in [1, 2**31 - 1], got {max_blocks!r}")




_CASTS: dict[np.dtype, dict[Any, Any]] = {}


def _cast_cache(dt: np.dtype) -> dict[Any, Any]:
    """Python number -> its NumPy scalar of type `dt`: a dict lookup is ~5x cheaper than a cast,
    and a step passes the same sizes every time."""
    return _CASTS.setdefault(dt, {})


def _getter(positions: tuple[int, ...]) -> Any:
    """args -> the tuple of args at `positions` (operator.itemgetter, a tuple for any count)."""
    if len(positions) > 1:
        return operator.itemgetter(*positions)
    if positions:
        i = positions[0]
        return lambda args: (args[i],)
    return lambda args: ()


class FastPlan:
    """The hot-path binder of one (kernel, dtype), built once per launcher.

    `bind(args, array_type)` returns (values, launch size) exactly as `bind` would for a valid
    call; any argument it does not accept goes through `bind`, which raises its usual error.
    The integer scalars of a call (its geometry) repeat every step, so their casts, the array
    counts and the launch size are computed once per distinct geometry and looked up after.
    """

    __slots__ = ("kernel", "dtype", "t", "n", "arrays", "ints", "int_casts", "int_types", "get_ints", "reals",
                 "count_fns", "size_fn", "geometries", "block", "grid_fns", "grids")

    def __init__(self, kernel: Kernel, dtype: Any) -> None:
        self.kernel = kernel
        self.t, self.dtype = template_type(kernel, dtype)
        params = kernel.params
        self.n = len(params)
        self.ints = tuple(i for i, p in enumerate(params) if not p.is_pointer and p.base != "T")
        names = [params[i].name for i in self.ints]
        self.count_fns = tuple(kernel.positional(p.count or "", names) for p in params if p.is_pointer)
        self.size_fn = kernel.positional(kernel.size, names)
        self.arrays = tuple((i, p.dtype(self.t)) for i, p in enumerate(params) if p.is_pointer)
        casts = []
        for i in self.ints:
            dt = params[i].dtype(self.t)
            info = np.iinfo(dt)
            casts.append((dt.type, int(info.min), int(info.max)))
        self.int_casts = tuple(casts)
        self.int_types = (int,) * len(self.ints)
        self.get_ints = _getter(self.ints)
        reals = []
        for i, p in enumerate(params):
            if not p.is_pointer and p.base == "T":
                dt = p.dtype(self.t)
                reals.append((i, dt.type, -_FLOAT_MAX[dt], _FLOAT_MAX[dt], _cast_cache(dt)))
        self.reals = tuple(reals)
        self.geometries: dict[tuple, tuple[tuple, tuple, int]] = {}
        self.block = kernel.block
        self.grid_fns = tuple(kernel.positional(e, names) for e in kernel.grid or ())
        self.grids: dict[tuple, tuple[int, int, int]] = {}

    def grid(self, args: Sequence[Any]) -> tuple[int, int, int]:
        """A cooperative kernel's checked grid for a call `bind` accepted (cached per geometry)."""
        key = self.get_ints(args)
        dims = self.grids.get(key)
        if dims is None:
            d = [int(f(*key)) for f in self.grid_fns] + [1, 1]
            dims = (d[0], d[1], d[2])
            check_launch_limits(self.kernel.name, dims, self.block or 0)
            if len(self.grids) > 1024:
                self.grids.clear()
            self.grids[key] = dims
        return dims

    def _geometry(self, key: tuple) -> tuple[tuple, tuple, int] | None:
        """(cast integer scalars, array counts, launch size) of one geometry; None if invalid."""
        for v, (_, lo, hi) in zip(key, self.int_casts):
            if not lo <= v <= hi:
                return None
        size = self.size_fn(*key)
        if size < 0:
            return None
        if len(self.geometries) > 1024:
            self.geometries.clear()
        hit = (tuple(cast(v) for v, (cast, _, _) in zip(key, self.int_casts)),
               tuple(f(*key) for f in self.count_fns), size)
        self.geometries[key] = hit
        return hit

    def bind(self, args: Sequence[Any], array_type: Any, array_module: str) -> tuple[list[Any], int]:
        if len(args) != self.n:
            return self._slow(args, array_type, array_module)
        key = self.get_ints(args)
        if tuple(map(type, key)) != self.int_types:  # np.int64(4) == 4 as a dict key: check types first
            return self._slow(args, array_type, array_module)
        hit = self.geometries.get(key) or self._geometry(key)
        if hit is None:
            return self._slow(args, array_type, array_module)
        casts, counts, size = hit
        values = list(args)
        for i, cv in zip(self.ints, casts):
            values[i] = cv
        for i, cast, lo, hi, cache in self.reals:
            v = args[i]
            tv = type(v)
            if tv is not float and tv is not int:
                return self._slow(args, array_type, array_module)
            cv = cache.get(v) if v else None  # zeros uncached: -0.0 == 0 as dict keys
            if cv is None:
                if not lo <= v <= hi:
                    return self._slow(args, array_type, array_module)
                if len(cache) > 4096:  # learning rates change every step under a schedule
                    cache.clear()
                cv = cast(v)
                if v:
                    cache[v] = cv
            values[i] = cv
        for (i, want), count in zip(self.arrays, counts):
            a = args[i]
            if type(a) is not array_type or a.dtype != want or a.size != count or not a.flags.c_contiguous:
                return self._slow(args, array_type, array_module)
        return values, size

    def _slow(self, args: Sequence[Any], array_type: Any, array_module: str) -> tuple[list[Any], int]:
        bound = bind(self.kernel, self.dtype, args, array_type, array_module)
        return bound.values, bound.size
