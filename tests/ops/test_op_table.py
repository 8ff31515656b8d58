"""The op interface: every op a layer, loss or optimizer calls is declared on the reference, and
the table in dualnet/ops/__init__.py says truthfully which table overrides which op."""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

import dualnet
from dualnet import ops
from dualnet.ops.cpu import CpuOps
from dualnet.ops.cuda import CupyOps, EmulatedOps
from dualnet.ops.reference import ReferenceOps

PACKAGE = pathlib.Path(dualnet.__file__).parent
CALLERS = [*sorted((PACKAGE / "layers").glob("*.py")), PACKAGE / "losses.py", PACKAGE / "optim.py",
           *sorted((PACKAGE / "train").glob("*.py"))]


def _ops_calls(path: pathlib.Path) -> set[str]:
    """Names X of every `<something>.ops.X` and `ops.X` attribute read in a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            base = node.value
            if (isinstance(base, ast.Attribute) and base.attr == "ops") or (isinstance(base, ast.Name)
                                                                             and base.id == "ops"):
                found.add(node.attr)
    return found


def test_every_op_any_layer_calls_is_declared_on_the_reference():
    called = set().union(*(_ops_calls(p) for p in CALLERS))
    assert called, "found no op calls at all: the scan is broken"
    assert called <= set(ops.OPS), f"not in ops.OPS: {sorted(called - set(ops.OPS))}"
    for name in ops.OPS:
        assert callable(getattr(ReferenceOps, name, None)), name


def test_no_op_is_looked_up_by_name():
    for path in CALLERS:
        text = path.read_text()
        assert not re.search(r"getattr\([^)]*ops", text), f"{path.name} looks an op up with getattr"


def _table_rows() -> dict[str, tuple[bool, bool]]:
    """op -> (cpu overrides, cuda overrides), from the markdown table in ops/__init__.py."""
    rows = {}
    for line in (ops.__doc__ or "").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] == "op" or set(cells[0]) <= {"-"}:
            continue
        name, _, cpu, cuda = cells
        assert name not in rows, f"{name} is listed twice"
        rows[name] = (cpu == "yes", bool(cuda))
    return rows


def test_the_op_table_lists_every_op_once_with_its_true_overrides():
    rows = _table_rows()
    assert sorted(rows) == sorted(ops.OPS)
    cpu, cuda = set(ops.overrides(CpuOps)), set(ops.overrides(CupyOps))
    for name, (on_cpu, on_cuda) in rows.items():
        assert (name in cpu) == on_cpu, f"{name}: the table says cpu={on_cpu}"
        assert (name in cuda) == on_cuda, f"{name}: the table says cuda={on_cuda}"
    assert ops.overrides(EmulatedOps) == ops.overrides(CupyOps)


@pytest.mark.parametrize("table", [CpuOps, CupyOps])
def test_fast_tables_override_only_declared_ops(table):
    declared = set(ops.OPS)
    own = {n for n, v in vars(table).items() if callable(v) and not n.startswith("_")}
    assert own <= declared, f"{table.__name__} defines ops the reference does not declare: {own - declared}"
