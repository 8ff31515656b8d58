"""Devices: which array module and which op table the layers use.

Four device names exist:
  "ref"          NumPy and the reference op table, ReferenceOps: slow, readable, the truth;
  "cpu"          NumPy and the fast CPU op table, CpuOps (always available);
  "gpu", "gpu:N" CuPy on CUDA device N with kernel-backed ops;
  "emu"          the GPU code path (CupyOps and its kernels) run on the CPU by the emulator.

Nothing falls back silently: asking for an unusable device raises DeviceUnavailableError whose
message says why and what to do.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from .errors import DeviceMismatchError, DeviceUnavailableError

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
]

_NAME_RE = re.compile(r"^(ref|cpu|emu|gpu)(?::(\d+))?$")


def parse_device_name(name: str) -> str:
    """Canonical device name ("gpu" -> "gpu:0"); ValueError says what is allowed."""
    if isinstance(name, Device):
        return name.name
    if not isinstance(name, str):
        raise ValueError(f"device must be a string such as 'ref', 'cpu', 'gpu', 'gpu:1' or 'emu', got {name!r}")
    m = _NAME_RE.match(name.strip().lower())
    if not m:
        raise ValueError(f"unknown device {name!r}: expected 'ref', 'cpu', 'gpu', 'gpu:N' (N >= 0) or 'emu'")
    kind, index = m.group(1), m.group(2)
    if kind == "gpu":
        return f"gpu:{int(index or 0)}"
    if index is not None:
        raise ValueError(f"device {name!r}: only 'gpu' takes an index, e.g. 'gpu:1'")
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


# --- availability probes -------------------------------------------------------------------


def _cupy_status(index: int = 0) -> tuple[bool, str]:
    """Whether CuPy can use CUDA device `index`, and if not, the true reason.

    A successful `import cupy` proves nothing: the driver and the device are only touched when
    CuPy is asked for the device count.
    """
    try:
        import cupy  # noqa: F401
    except ImportError:
        return False, ("CuPy is not installed; install it with `pip install dualnet[gpu]` "
                       "(CUDA 12) or `pip install dualnet[gpu-cuda13]` (CUDA 13)")
    except Exception as exc:  # a broken CuPy install raises all sorts of things
        return False, f"CuPy failed to import ({type(exc).__name__}: {exc}); reinstall cupy-cuda12x"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        text = str(exc)
        if "insufficient" in text.lower() or "driver" in text.lower() or "libcuda" in text.lower():
            return False, (f"no usable CUDA driver ({text}); install the NVIDIA driver, "
                           "or use --device cpu / emu")
        return False, f"CUDA is not usable ({type(exc).__name__}: {text}); use --device cpu or emu"
    if count == 0:
        return False, "CuPy sees no CUDA device on this machine; use --device cpu (or emu to test the GPU path)"
    if index >= count:
        return False, f"CUDA device {index} does not exist: this machine has {count} (gpu:0..gpu:{count - 1})"
    return True, ""


def _emulator_status() -> tuple[bool, str]:
    try:
        from .kernels.emulator import emulator_available
    except ImportError as exc:  # pragma: no cover - only in a broken install
        return False, f"the kernel emulator cannot be imported: {exc}"
    return emulator_available()


def devices() -> list[DeviceInfo]:
    """Every device name with `available` and, where not, the reason."""
    out = [DeviceInfo("ref", True, "", "NumPy, the reference op table (slow, the truth)"),
           DeviceInfo("cpu", True, "", "NumPy, the fast CPU op table")]
    ok, reason = _cupy_status(0)
    count = 0
    if ok:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    if count:
        for i in range(count):
            out.append(DeviceInfo(f"gpu:{i}", True, "", _gpu_description(i)))
    else:
        out.append(DeviceInfo("gpu", False, reason, "CuPy + custom CUDA kernels"))
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

        return Device("emu", np, EmulatedOps())
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
    """Set the global device, e.g. `dn.use_device("gpu")`; returns it."""
    dev = get_device_object(name)
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
    """Scope a device: `with dn.device("emu"): ...`."""
    dev = get_device_object(name)
    _state.stack.append(dev)
    try:
        yield dev
    finally:
        _state.stack.pop()


# --- moving arrays --------------------------------------------------------------------------


def array_device(a: Any) -> str:
    """"cpu"-side ("cpu" or "emu" both hold NumPy arrays) or "gpu:N" for a CuPy array."""
    if isinstance(a, np.ndarray) or np.isscalar(a):
        return "host"
    dev = getattr(a, "device", None)
    if dev is not None and hasattr(dev, "id"):
        return f"gpu:{dev.id}"
    return "host"


def to_numpy(a: Any) -> np.ndarray:
    """A NumPy copy (or view) of any array of any device."""
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "get"):
        return a.get()
    return np.asarray(a)


def to_device(a: Any, name: str | Device | None = None) -> Any:
    """Move an array to a device ("cpu", "emu" hold NumPy arrays; "gpu:N" CuPy arrays)."""
    dev = get_device() if name is None else get_device_object(name)
    if dev.kind == "gpu":
        import cupy

        with cupy.cuda.Device(dev.index):
            return cupy.asarray(a)
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
