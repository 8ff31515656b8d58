"""Devices: which array module and which op table the layers use.

Four device names exist:
  "ref"          NumPy and the reference op table, ReferenceOps: slow, readable, the truth;
  "cpu"          NumPy and the fast CPU op table, CpuOps (always available);
  "gpu", "gpu:N" CuPy on CUDA device N with kernel-backed ops;
  "emu"          the GPU code path (CupyOps and its kernels) run on the CPU by the emulator, on
                 arrays that refuse host leaks as CuPy's do (emu_array.py).

On "gpu:N" CuPy allocates and launches on its current device, so every dualnet entry point
enters `cupy.cuda.Device(N)` for the scope of its work: `use_device`, `with device(...)`,
`to_device`, a layer call, and every op of the device's table (ops/cuda.py).

Nothing falls back silently: asking for an unusable device raises DeviceUnavailableError whose
message says why and what to do.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, wraps
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import numpy as np

from .emu_array import EMU, EmuArray, from_host
from .errors import DeviceMismatchError, DeviceUnavailableError, UsageError

__all__ = [
    "Device",
    "DeviceInfo",
    "DeviceUnavailableError",
    "use_device",
    "device",
    "get_device",
    "get_ops",
    "devices",
    "to_device",
    "to_numpy",
    "array_device",
    "parse_device_name",
    "device_scope",
    "on_device",
]

_NO_SCOPE = contextlib.nullcontext()

# "cuda" and "cuda:N" are what a PyTorch user types: aliases of "gpu" and "gpu:N"
_NAME_RE = re.compile(r"^(ref|cpu|emu|gpu|cuda)(?::(\d+))?$")


def parse_device_name(name: str) -> str:
    """Canonical device name ("gpu" -> "gpu:0"); ValueError says what is allowed."""
    if isinstance(name, Device):
        return name.name
    if not isinstance(name, str):
        raise UsageError(f"device must be a string such as 'ref', 'cpu', 'gpu', 'gpu:1' or 'emu', got {name!r}")
    m = _NAME_RE.match(name.strip().lower())
    if not m:
        raise UsageError(f"unknown device {name!r}: expected 'ref', 'cpu', 'gpu', 'gpu:N' (N >= 0) or 'emu' "
                         "('cuda', 'cuda:N': aliases of 'gpu', 'gpu:N')")
    kind, index = m.group(1), m.group(2)
    if kind in ("gpu", "cuda"):
        return f"gpu:{int(index or 0)}"
    if index is not None:
        raise UsageError(f"device {name!r}: only 'gpu' takes an index, e.g. 'gpu:1'")
    return kind


@dataclass(frozen=True)
class DeviceInfo:
    """One line of `devices()`: a device name, whether it can be used, and why not."""

    name: str
    available: bool
    reason: str = ""
    description: str = ""


class Device:
    """An active device: its name, its array module `xp` and its op table `ops`."""

    def __init__(self, name: str, xp: Any, ops: Any, index: int | None = None):
        self.name = name
        self.xp = xp
        self.ops = ops
        self.index = index

    @property
    def kind(self) -> str:
        return self.name.split(":")[0]

    def __repr__(self) -> str:
        return f"Device({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __deepcopy__(self, memo: dict) -> Device:
        # a device is a process-wide singleton (it holds compiled kernels): copies share it
        return self

    def __reduce__(self):
        return (get_device_object, (self.name,))

    def scope(self) -> contextlib.AbstractContextManager:
        """Where this device's work runs: CuPy's `Device(N)` for "gpu:N" (CuPy allocates and
        launches on its *current* device), nothing for the host devices."""
        if self.index is None:
            return _NO_SCOPE
        return self.xp.cuda.Device(self.index)


class _OnDevice(Protocol):
    device: Device


_S = TypeVar("_S", bound=_OnDevice)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def on_device(method: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
    """Run `method(self, ...)` inside `self.device.scope()`.

    CuPy allocates and launches on its *current* device, so on "gpu:N" the array code of a layer,
    parameter or flat buffer must run with N current whatever the caller's current device is. The
    rule lives here, once: layer code declares the entry points that touch arrays (`__call__`,
    `backward`, fills, casts) with this decorator instead of entering the scope itself.
    """

    @wraps(method)
    def scoped(self: _S, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self.device.scope():
            return method(self, *args, **kwargs)

    return scoped


# --- availability probes -------------------------------------------------------------------


def _cupy_status(index: int = 0) -> tuple[bool, str]:
    """Whether CuPy can run dualnet on CUDA device `index`, and if not, every true reason with its
    fix (see gpu_probe: the probe tries what a run needs, not just `import cupy`)."""
    from .gpu_probe import cached_probe

    result = cached_probe(index)
    return result.usable, result.reason


def _emulator_status() -> tuple[bool, str]:
    try:
        from .kernels.emulator import emulator_available
    except ImportError as exc:  # pragma: no cover - only in a broken install
        return False, f"the kernel emulator cannot be imported: {exc}"
    return emulator_available()


def devices() -> list[DeviceInfo]:
    """Every device name with `available` and, where not, the reason and the fix."""
    from .gpu_probe import cached_probe

    out = [DeviceInfo("ref", True, "", "NumPy, the reference op table (slow, the truth)"),
           DeviceInfo("cpu", True, "", "NumPy, the fast CPU op table")]
    first = cached_probe(0)
    if first.usable:
        for i in range(first.count):
            result = first if i == 0 else cached_probe(i)
            notes = "".join(f" (note: {n})" for n in result.notes)
            out.append(DeviceInfo(f"gpu:{i}", result.usable, result.reason, _gpu_description(i) + notes))
    else:
        notes = "".join(f" (note: {n})" for n in first.notes)
        out.append(DeviceInfo("gpu", False, first.reason, "CuPy + custom CUDA kernels" + notes))
    ok, reason = _emulator_status()
    out.append(DeviceInfo("emu", ok, reason, "GPU code path run on the CPU by the kernel emulator"))
    return out


def _gpu_description(index: int) -> str:
    try:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(index)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # description is cosmetic
        return "CUDA device"


# --- device construction -------------------------------------------------------------------


@cache
def _make_device(name: str) -> Device:
    if name == "ref":
        from .ops.reference import ReferenceOps

        return Device("ref", np, ReferenceOps())
    if name == "cpu":
        from .ops.cpu import CpuOps

        return Device("cpu", np, CpuOps())
    if name == "emu":
        ok, reason = _emulator_status()
        if not ok:
            raise DeviceUnavailableError(f"device 'emu' is unavailable: {reason}")
        from .ops.cuda import EmulatedOps

        return Device("emu", EMU, EmulatedOps())
    index = int(name.split(":")[1])
    ok, reason = _cupy_status(index)
    if not ok:
        raise DeviceUnavailableError(f"device '{name}' is unavailable: {reason}")
    import cupy

    from .ops.cuda import CupyOps

    return Device(name, cupy, CupyOps(index), index)


def get_device_object(name: str | Device) -> Device:
    """The Device for a name, raising DeviceUnavailableError if it cannot be used."""
    if isinstance(name, Device):
        return name
    return _make_device(parse_device_name(name))


class _State(threading.local):
    def __init__(self) -> None:
        self.stack: list[Device] = []


_state = _State()
_global: list[Device] = []


def use_device(name: str | Device) -> Device:
    """Set the global device, e.g. `dn.use_device("gpu:1")`; returns it.

    For "gpu:N" device N also becomes CuPy's current device in this thread, so that arrays the
    caller creates with `dev.xp` are allocated there.
    """
    dev = get_device_object(name)
    if dev.kind == "gpu":
        dev.xp.cuda.Device(dev.index).use()
    _global[:] = [dev]
    return dev


def get_device() -> Device:
    """The active device: the innermost `with device(...)`, else the global one, else "cpu"."""
    if _state.stack:
        return _state.stack[-1]
    if _global:
        return _global[0]
    return use_device("cpu")


def get_ops() -> Any:
    return get_device().ops


@contextlib.contextmanager
def device(name: str | Device) -> Iterator[Device]:
    """Scope a device: `with dn.device("gpu:1"): ...` (CUDA device 1 is current inside)."""
    dev = get_device_object(name)
    _state.stack.append(dev)
    try:
        with dev.scope():
            yield dev
    finally:
        _state.stack.pop()


# --- moving arrays --------------------------------------------------------------------------


def array_device(a: Any) -> str:
    """"host" for NumPy arrays and scalars, "emu" for emu arrays, "gpu:N" for a CuPy array."""
    if type(a) is EmuArray:
        return "emu"
    if isinstance(a, np.ndarray) or np.isscalar(a):
        return "host"
    dev = getattr(a, "device", None)
    if dev is not None and hasattr(dev, "id"):
        return f"gpu:{dev.id}"
    return "host"


def device_scope(a: Any) -> contextlib.AbstractContextManager:
    """The scope in which to compute on array `a`: its CUDA device for a GPU array, else nothing."""
    where = array_device(a)
    if where.startswith("gpu:"):
        return get_device_object(where).scope()
    return _NO_SCOPE


def to_numpy(a: Any) -> np.ndarray:
    """A NumPy array of any array of any device: NumPy arrays as they are, device arrays copied."""
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "get"):
        return a.get()
    return np.asarray(a)


def to_device(a: Any, name: str | Device | None = None) -> Any:
    """Move an array to a device: "ref"/"cpu" hold NumPy arrays, "emu" emu arrays, "gpu:N" CuPy
    arrays allocated on device N (an array on another GPU is copied there)."""
    dev = get_device() if name is None else get_device_object(name)
    if dev.kind == "gpu":
        cupy = dev.xp
        with cupy.cuda.Device(dev.index):
            src = array_device(a)
            if src == dev.name:
                return a
            if src.startswith("gpu:"):
                # cupy.asarray returns an array of another GPU as it is; copy() under the
                # target device copies it across
                return a.copy()
            return cupy.asarray(to_numpy(a) if src == "emu" else a)
    if dev.kind == "emu":
        return a if type(a) is EmuArray else from_host(to_numpy(a))
    return to_numpy(a)


def check_same_device(where: str, **arrays: Any) -> None:
    """Raise DeviceMismatchError naming both devices when arrays live on different devices."""
    seen: dict[str, str] = {}
    for label, arr in arrays.items():
        if arr is None:
            continue
        seen[label] = array_device(arr)
    if len(set(seen.values())) > 1:
        parts = ", ".join(f"{k} on {'cpu' if v == 'host' else v}" for k, v in seen.items())
        raise DeviceMismatchError(f"{where}: arrays on different devices ({parts}); move them with "
                                  "dn.to_device(array, name) or model.to(name)")
