"""The one declared table of every kernel, and the argument checking both launchers share.

Each kernel is declared once: its source file, its template types and, for every parameter, the
C type, the name, the role (pointers: ``in``, ``out`` or ``inout``) and the element count a
pointer must hold, as an expression over the scalar parameters.  From this table come the NVRTC
name expressions (``launch.py``, ``nvrtc_check.py``), the emulator's C wrappers (``emulator.py``)
and the dtype / size checks and scalar casts of :func:`bind` (both launchers).

Roles: ``in`` arrays are only read; ``out`` arrays are fully overwritten (every element, always:
the checking emulator enforces it); ``inout`` arrays are read and may be written.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .errors import KernelArgTypeError, KernelArgValueError

#: template type name -> NumPy dtype
TYPE_DTYPES: dict[str, np.dtype] = {"float": np.dtype(np.float32), "double": np.dtype(np.float64)}
#: fixed (non-template) C element / scalar types -> NumPy dtype
FIXED_DTYPES: dict[str, np.dtype] = {"int": np.dtype(np.int32), "long long": np.dtype(np.int64)}

POINTER_TYPES = ("const T*", "T*", "const int*", "int*")
SCALAR_TYPES = ("int", "long long", "T")
ROLES = ("in", "out", "inout")


@dataclass(frozen=True)
class Param:
    """One kernel parameter as declared in C."""

    ctype: str          # one of POINTER_TYPES + SCALAR_TYPES
    name: str
    role: str | None = None   # pointers only: "in", "out", "inout"
    count: str | None = None  # pointers only: element count, expression over scalar params

    @property
    def is_pointer(self) -> bool:
        return self.ctype.endswith("*")

    @property
    def base(self) -> str:
        """Element (or scalar) type without const and *: "T", "int" or "long long"."""
        return self.ctype.replace("const ", "").rstrip("*").strip()

    def c_type(self, t: str) -> str:
        """The C type with the template parameter substituted, e.g. ``const float*``."""
        return self.ctype.replace("T", t) if self.base == "T" else self.ctype

    def dtype(self, t: str) -> np.dtype:
        return TYPE_DTYPES[t] if self.base == "T" else FIXED_DTYPES[self.base]


def array_in(name: str, count: str, elem: str = "T") -> Param:
    return Param(f"const {elem}*", name, "in", count)


def array_out(name: str, count: str, elem: str = "T") -> Param:
    return Param(f"{elem}*", name, "out", count)


def array_inout(name: str, count: str, elem: str = "T") -> Param:
    return Param(f"{elem}*", name, "inout", count)


def int32(name: str) -> Param:
    return Param("int", name)


def int64(name: str) -> Param:
    return Param("long long", name)


def real(name: str) -> Param:
    return Param("T", name)


_ALLOWED_OPS = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv)


def _compile_expr(expr: str, names: set[str], where: str) -> Callable[[Mapping[str, int]], int]:
    """Compile an integer expression (+ - * //, integer literals, scalar names) once."""
    tree = ast.parse(expr, mode="eval")
    for node in ast.walk(tree):
        ok = isinstance(node, (ast.Expression, ast.BinOp, ast.Load, *_ALLOWED_OPS)) or (
            isinstance(node, ast.Constant) and type(node.value) is int) or (
            isinstance(node, ast.Name) and node.id in names)
        if not ok:
            raise ValueError(f"{where}: bad size expression {expr!r} (only integer scalar "
                             f"parameters {sorted(names)}, literals and + - * // are allowed)")
    code = compile(tree, f"<{where}>", "eval")
    return lambda scalars: eval(code, {"__builtins__": {}}, dict(scalars))  # noqa: S307


@dataclass(frozen=True)
class Kernel:
    """One templated ``__global__`` function."""

    name: str
    source: str                       # file name relative to the table's source_dir
    params: tuple[Param, ...]
    size: str                         # launch size: elements the grid-stride loop covers
    types: tuple[str, ...] = ("float", "double")
    _counts: dict = field(init=False, default=None, compare=False, repr=False)  # type: ignore
    _size: Any = field(init=False, default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        where = f"kernel {self.name}"
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "types", tuple(self.types))
        seen: set[str] = set()
        for p in self.params:
            if p.name in seen or not p.name.isidentifier():
                raise ValueError(f"{where}: bad or duplicate parameter name {p.name!r}")
            seen.add(p.name)
            if p.ctype not in POINTER_TYPES + SCALAR_TYPES:
                raise ValueError(f"{where}: parameter {p.name}: unsupported C type {p.ctype!r}")
            if p.is_pointer != (p.role in ROLES) or p.is_pointer != (p.count is not None):
                raise ValueError(f"{where}: parameter {p.name}: pointers need a role in {ROLES} "
                                 "and a count; scalars have neither")
            if p.role == "in" and not p.ctype.startswith("const "):
                raise ValueError(f"{where}: input {p.name} must be declared const")
            if p.role in ("out", "inout") and p.ctype.startswith("const "):
                raise ValueError(f"{where}: output {p.name} cannot be const")
        for t in self.types:
            if t not in TYPE_DTYPES:
                raise ValueError(f"{where}: unsupported template type {t!r}")
        ints = {p.name for p in self.params if p.ctype in ("int", "long long")}
        counts = {p.name: _compile_expr(p.count, ints, f"{where}, parameter {p.name}")
                  for p in self.params if p.is_pointer}
        object.__setattr__(self, "_counts", counts)
        object.__setattr__(self, "_size", _compile_expr(self.size, ints, f"{where}, size"))

    def name_expression(self, t: str) -> str:
        """The C++ name of one instantiation, e.g. ``im2col<float>``."""
        return f"{self.name}<{t}>"

    def instantiations(self) -> list[str]:
        return [self.name_expression(t) for t in self.types]

    def count(self, param: Param, scalars: Mapping[str, int]) -> int:
        return self._counts[param.name](scalars)

    def launch_size(self, scalars: Mapping[str, int]) -> int:
        return self._size(scalars)

    def signature(self, t: str = "T") -> str:
        args = ", ".join(f"{p.c_type(t)} {p.name}" for p in self.params)
        return f"{self.name}<{t}>({args})"


class KernelTable:
    """A set of kernels whose sources live in ``source_dir``."""

    def __init__(self, kernels: Iterable[Kernel], source_dir: str | Path) -> None:
        self.source_dir = Path(source_dir)
        self.kernels: dict[str, Kernel] = {}
        for k in kernels:
            if k.name in self.kernels:
                raise ValueError(f"kernel {k.name} declared twice")
            self.kernels[k.name] = k

    def __getitem__(self, name: str) -> Kernel:
        try:
            return self.kernels[name]
        except KeyError:
            raise KeyError(f"no kernel named {name!r}; declared: {sorted(self.kernels)}") from None

    def __iter__(self):
        return iter(self.kernels.values())

    def __len__(self) -> int:
        return len(self.kernels)

    def sources(self) -> dict[str, list[Kernel]]:
        """Source file name -> the kernels it defines, in declaration order."""
        out: dict[str, list[Kernel]] = {}
        for k in self.kernels.values():
            out.setdefault(k.source, []).append(k)
        return out

    def source_path(self, source: str) -> Path:
        return self.source_dir / source

    def read_source(self, source: str) -> str:
        return self.source_path(source).read_text()

    def name_expressions(self, source: str) -> list[str]:
        """Every instantiation defined in one source file, e.g. ``["im2col<float>", ...]``."""
        return [e for k in self.sources()[source] for e in k.instantiations()]

    def instantiations(self) -> list[str]:
        return [e for k in self for e in k.instantiations()]


# ----------------------------------------------------------------------------- argument binding

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
    for i, (p, v) in enumerate(zip(params, args)):
        if not p.is_pointer:
            continue
        where = f"kernel {kernel.name}<{t}>, parameter {p.name} ({p.ctype}, {p.role})"
        if not isinstance(v, array_type):
            raise KernelArgTypeError(f"{where}: expected a {array_module} array, got "
                                     f"{type(v).__module__}.{type(v).__name__}")
        want = p.dtype(t)
        if v.dtype != want:
            raise KernelArgTypeError(f"{where}: expected dtype {want}, got {v.dtype}")
        n = kernel.count(p, scalars)
        if v.size != n:
            raise KernelArgValueError(f"{where}: expected {n} elements ({p.count} with "
                                      f"{_mention(p.count, scalars)}), got {v.size} "
                                      f"(shape {tuple(v.shape)})")
        if not v.flags.c_contiguous:
            raise KernelArgValueError(f"{where}: array is not C-contiguous (strides "
                                      f"{v.strides}); pass ascontiguousarray(...)")
        if p.role != "in" and not getattr(v.flags, "writeable", True):
            raise KernelArgValueError(f"{where}: array is read-only")
        counts[p.name] = n
        values[i] = v
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


def check_launch_config(block: int, max_blocks: int) -> None:
    if not (isinstance(block, int) and 1 <= block <= 1024):
        raise ValueError(f"block must be an int in [1, 1024], got {block!r}")
    if not (isinstance(max_blocks, int) and 1 <= max_blocks <= 2**31 - 1):
        raise ValueError(f"max_blocks must be an int in [1, 2**31 - 1], got {max_blocks!r}")


# ----------------------------------------------------------------------------- the table

_CONV = [int32(s) for s in "n c h w kh kw sh sw ph pw dh dw out_h out_w".split()]
_POOL = [int32(s) for s in "n c h w kh kw sh sw ph pw out_h out_w".split()]
_X, _COLS, _Y = "n*c*h*w", "c*kh*kw*n*out_h*out_w", "n*c*out_h*out_w"

KERNELS = KernelTable([
    Kernel("im2col", "im2col.cu", (array_in("x", _X), array_out("cols", _COLS), *_CONV), _COLS),
    Kernel("col2im", "im2col.cu", (array_in("cols", _COLS), array_out("x", _X), *_CONV), _X),
    Kernel("maxpool_forward", "pooling.cu",
           (array_in("x", _X), array_out("y", _Y), array_out("argmax", _Y, "int"), *_POOL), _Y),
    Kernel("maxpool_backward", "pooling.cu",
           (array_in("dy", _Y), array_in("argmax", _Y, "int"), array_out("dx", _X), *_POOL), _X),
    Kernel("avgpool_forward", "pooling.cu", (array_in("x", _X), array_out("y", _Y), *_POOL), _Y),
    Kernel("avgpool_backward", "pooling.cu",
           (array_in("dy", _Y), array_out("dx", _X), *_POOL), _X),
    Kernel("bias_act_forward", "activation.cu",
           (array_in("x", "n*c*inner"), array_in("bias", "c"), array_out("y", "n*c*inner"),
            int32("n"), int32("c"), int32("inner"), int32("act"), int32("channel_major")),
           "n*c*inner"),
    Kernel("relu_backward", "activation.cu",
           (array_in("dy", "size"), array_in("y", "size"), array_out("dx", "size"),
            int64("size")), "size"),
    Kernel("softmax_xent_forward", "loss.cu",
           (array_in("logits", "n*k"), array_in("labels", "n", "int"), array_out("probs", "n*k"),
            array_out("loss", "n"), int32("n"), int32("k")), "n"),
    Kernel("softmax_xent_backward", "loss.cu",
           (array_in("probs", "n*k"), array_in("labels", "n", "int"), array_out("dlogits", "n*k"),
            int32("n"), int32("k"), real("scale")), "n*k"),
    Kernel("sgd_update", "optim.cu",
           (array_inout("param", "size"), array_in("grad", "size"),
            array_inout("velocity", "size"), int64("size"), real("lr"), real("momentum"),
            real("weight_decay"), int32("nesterov")), "size"),
    Kernel("adam_update", "optim.cu",
           (array_inout("param", "size"), array_in("grad", "size"), array_inout("m", "size"),
            array_inout("v", "size"), int64("size"), real("lr"), real("beta1"), real("beta2"),
            real("eps"), real("weight_decay"), real("bias_correction1"),
            real("bias_correction2")), "size"),
], source_dir=Path(__file__).resolve().parent)
