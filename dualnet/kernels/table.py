"""How a kernel is declared: `Param` (C type, name, role, element count), `Kernel` (source,
template types, parameters, launch shape) and `KernelTable` (sources read with device.cuh spliced
in, NVRTC name expressions, instantiations). The declarations themselves are in signatures.py."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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


_INCLUDE = re.compile(r'\s*#\s*include\s+"([\w.-]+\.cuh)"\s*$')
_KERNEL_DIR = Path(__file__).resolve().parent  # headers a test table's sources may include

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
    block: int | None = None          # cooperative kernels: threads per block
    grid: tuple[str, ...] | None = None  # cooperative kernels: blocks in x (, y (, z))
    _counts: dict = field(init=False, default=None, compare=False, repr=False)  # type: ignore
    _size: Any = field(init=False, default=None, compare=False, repr=False)
    _grid: Any = field(init=False, default=None, compare=False, repr=False)

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
        counts = {p.name: _compile_expr(p.count or "", ints, f"{where}, parameter {p.name}")
                  for p in self.params if p.is_pointer}
        object.__setattr__(self, "_counts", counts)
        object.__setattr__(self, "_size", _compile_expr(self.size, ints, f"{where}, size"))
        if (self.block is None) != (self.grid is None):
            raise ValueError(f"{where}: a cooperative kernel declares both block and grid")
        if self.block is not None:
            if not (type(self.block) is int and 1 <= self.block <= 1024 and self.block % 32 == 0):
                raise ValueError(f"{where}: block must be a multiple of 32 in [32, 1024], got {self.block!r}")
            object.__setattr__(self, "grid", tuple(self.grid or ()))
            if not 1 <= len(self.grid or ()) <= 3:
                raise ValueError(f"{where}: grid takes 1 to 3 expressions, got {self.grid!r}")
            object.__setattr__(self, "_grid", tuple(_compile_expr(e, ints, f"{where}, grid")
                                                    for e in self.grid or ()))

    @property
    def cooperative(self) -> bool:
        """Declared with a fixed block: runs as fibers in the emulator (barriers, shared memory)."""
        return self.block is not None

    def grid_dims(self, scalars: Mapping[str, int]) -> tuple[int, int, int]:
        """A cooperative kernel's grid (x, y, z) for these integer scalars."""
        dims = [f(scalars) for f in self._grid or ()] + [1, 1]
        return dims[0], dims[1], dims[2]

    def name_expression(self, t: str) -> str:
        """The C++ name of one instantiation, e.g. ``im2col<float>``."""
        return f"{self.name}<{t}>"

    def instantiations(self) -> list[str]:
        return [self.name_expression(t) for t in self.types]

    def count(self, param: Param, scalars: Mapping[str, int]) -> int:
        return self._counts[param.name](scalars)

    def launch_size(self, scalars: Mapping[str, int]) -> int:
        return self._size(scalars)

    def positional(self, expr: str, names: list[str]) -> Callable[..., int]:
        """`expr` (a count or the size) as a function of the integer scalars `names`, positionally.

        Built once per plan: a Python lambda is far cheaper to call per launch than `eval`.
        """
        ints = {p.name for p in self.params if p.ctype in ("int", "long long")}
        _compile_expr(expr, ints, f"kernel {self.name}")  # validates the expression
        return eval(f"lambda {', '.join(names)}: ({expr})", {"__builtins__": {}})  # noqa: S307

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
        """The source text with each ``#include "x.cuh"`` of a header beside it spliced in.

        Every consumer (NVRTC, CuPy, the emulator) compiles this one text, so a header change
        changes every cache key; ``#line`` keeps compiler messages pointing at the right file.
        """
        path = self.source_path(source)
        out, seen = [], set()
        for number, line in enumerate(path.read_text().splitlines(keepends=True), start=1):
            m = _INCLUDE.match(line)
            if m is None:
                out.append(line)
                continue
            header = self.source_dir / m.group(1)
            if not header.is_file():
                header = _KERNEL_DIR / m.group(1)
            if header.name not in seen:
                seen.add(header.name)
                out += [f'#line 1 "{header}"\n', header.read_text().rstrip("\n") + "\n",
                        f'#line {number + 1} "{path}"\n']
            else:
                out.append("\n")
        return "".join(out)

    def name_expressions(self, source: str) -> list[str]:
        """Every instantiation defined in one source file, e.g. ``["im2col<float>", ...]``."""
        return [e for k in self.sources()[source] for e in k.instantiations()]

    def instantiations(self) -> list[str]:
        return [e for k in self for e in k.instantiations()]
