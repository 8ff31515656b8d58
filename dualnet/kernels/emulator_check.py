"""The checking emulator's launch: guard zones, unwritten outputs, modified inputs, races.

Every array is staged in a larger buffer with guard zones on both sides; ``out`` arrays start
filled with a sentinel (a NaN payload for floats, 0xDEADBEEF for int32). After the launch the
guards must be intact, no sentinel may remain in an ``out`` array and ``in`` arrays must be
unchanged, else KernelCheckError says which kernel, which parameter and where.

Race check: the launch runs once per schedule of ``schedules(kernel)``, each on freshly staged
copies of the same inputs, and every written array must come out bit for bit the same. A
cooperative kernel runs in order, reversed (threads and blocks) and under two seeded random
interleavings that also preempt threads at shared-memory accesses; a grid-stride kernel in order
and reversed. A difference means the result depends on the order threads run in: a missing
``__syncthreads()``, a read of another thread's shared slot before it is written, or two
threads writing one element.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from .binding import Bound
from .errors import KernelCheckError


class EmulatorLauncher(Protocol):
    """What the check needs of dualnet.kernels.emulator's launcher (a protocol, so this module
    does not import the emulator that imports it)."""

    def run(self, fn: Any, bound: Bound, values: list[Any], grid: tuple[int, int, int], block: int,
            schedule: int = ..., seed: int = ...) -> None: ...

_GUARD_BYTE = 0xA5
_UNWRITTEN = {  # dtype -> (unsigned view dtype, bit pattern) filling "out" arrays in check mode
    np.dtype(np.float32): (np.uint32, 0x7FC0DEAD),
    np.dtype(np.float64): (np.uint64, 0x7FF8DEADBEEFDEAD),
    np.dtype(np.int32): (np.uint32, 0xDEADBEEF),
    np.dtype(np.int64): (np.uint64, 0xDEADBEEFDEADBEEF),
}
IN_ORDER, REVERSED, RANDOM = 0, 1, 2
#: (name, dn::Schedule, seed) of the race check's runs
COOPERATIVE_SCHEDULES = (("in order", IN_ORDER, 0), ("reversed", REVERSED, 0),
                         ("random (seed 1)", RANDOM, 1), ("random (seed 2)", RANDOM, 2))
SEQUENTIAL_SCHEDULES = (("in order", IN_ORDER, 0), ("reversed", REVERSED, 0))


def schedules(bound: Bound) -> tuple[tuple[str, int, int], ...]:
    return COOPERATIVE_SCHEDULES if bound.kernel.cooperative else SEQUENTIAL_SCHEDULES


def checked_launch(launcher: EmulatorLauncher, fn: Any, bound: Bound, grid: tuple[int, int, int],
                   block: int) -> None:
    """Run every schedule on staged copies, verify each, compare them, copy the first one out."""
    kernel = bound.kernel
    first: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    for name, schedule, seed in schedules(bound):
        staged = {p.name: _stage(p, v, bound.counts[p.name])
                  for p, v in zip(kernel.params, bound.values) if p.is_pointer}
        launcher.run(fn, bound, [staged[p.name][1] if p.is_pointer else v
                                 for p, v in zip(kernel.params, bound.values)], grid, block, schedule, seed)
        problems: list[str] = []
        for p, v in zip(kernel.params, bound.values):
            if p.is_pointer:
                problems += _verify(bound, p, v, *staged[p.name])
        if problems:
            raise KernelCheckError([f"{m} (schedule {name})" if len(first) else m for m in problems])
        if not first:
            first = staged
            first_name = name
            continue
        for p in kernel.params:
            if p.is_pointer and p.role != "in":
                a, b = first[p.name][1], staged[p.name][1]
                if a.tobytes() != b.tobytes():
                    raise KernelCheckError([_race(bound, p.name, a, b, first_name, name)])
    for p, v in zip(kernel.params, bound.values):
        if p.is_pointer and p.role != "in":
            np.copyto(v, first[p.name][1].reshape(v.shape))


def _race(bound: Bound, param: str, a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> str:
    differs = (a.view(np.uint8).reshape(a.size, -1) != b.view(np.uint8).reshape(b.size, -1)).any(axis=1)
    i = int(np.flatnonzero(differs)[0])
    return (f"kernel {bound.instantiation} is schedule-dependent (a race): parameter {param} "
            f"differs at flat index {i}: {a[i]!r} under schedule {name_a}, {b[i]!r} under {name_b}; "
            "look for a missing __syncthreads(), a shared slot read before its writer ran, or two "
            "threads writing one element")


def _stage(p: Any, v: Any, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Stage one array: (buffer with guard zones, interior view, guard length)."""
    g = max(256, min(n, 1 << 20))
    buf = np.empty(n + 2 * g, dtype=v.dtype)
    buf.view(np.uint8)[:] = _GUARD_BYTE
    inner = buf[g:g + n]
    if p.role == "out":
        utype, pattern = _UNWRITTEN[v.dtype]
        inner.view(utype)[:] = pattern
    else:
        inner[:] = v.reshape(-1)
    return buf, inner, g


def _verify(bound: Bound, p: Any, v: Any, buf: np.ndarray, inner: np.ndarray, g: int) -> list[str]:
    problems = []
    inst, n = bound.instantiation, inner.size
    what = f"parameter {p.name} ({p.role}, {n} elements)"
    isz = buf.itemsize
    before = np.flatnonzero(buf[:g].view(np.uint8) != _GUARD_BYTE)
    if before.size:
        k = g - int(before[-1]) // isz  # the write closest to the start
        problems.append(f"kernel {inst} wrote out of bounds of {what} at offset -{k} "
                        f"before the start")
    after = np.flatnonzero(buf[g + n:].view(np.uint8) != _GUARD_BYTE)
    if after.size:
        k = int(after[0]) // isz
        problems.append(f"kernel {inst} wrote out of bounds of {what} at offset +{k} past "
                        f"the end")
    if p.role == "out":
        utype, pattern = _UNWRITTEN[inner.dtype]
        missing = np.flatnonzero(inner.view(utype) == utype(pattern))
        if missing.size:
            problems.append(f"kernel {inst} never wrote {missing.size} elements of "
                            f"parameter {p.name}, first at flat index {int(missing[0])} "
                            f"(of {n})")
    if p.role == "in":
        changed = np.flatnonzero(inner.view(np.uint8) != v.reshape(-1).view(np.uint8))
        if changed.size:
            problems.append(f"kernel {inst} modified input parameter {p.name}, first at "
                            f"flat index {int(changed[0]) // isz}")
    return problems
