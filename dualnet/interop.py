"""DLPack: arrays of other frameworks (PyTorch, JAX, CuPy, NumPy) onto a dualnet device, without a copy
where one is not needed.

    t = torch.from_dlpack(layer.weight.data)   # dualnet -> torch: shares memory (NumPy and CuPy
                                               # arrays export through __dlpack__ themselves)
    w = dn.from_dlpack(t)                      # torch -> dualnet, onto the current device

What from_dlpack promises:
  - a writable producer on the same side (a host tensor onto "ref"/"cpu", a CUDA tensor onto the
    GPU it lives on) is shared, not copied: writing to one changes the other;
  - a read-only producer (a NumPy array with flags.writeable False, or any producer whose DLPack
    capsule says read-only) is copied, so nothing dualnet does can write memory meant to be
    read-only; the result is writable. A host producer that only speaks pre-1.0 DLPack (an
    unversioned capsule, which cannot say whether the memory may be written) is copied too:
    NumPy takes such memory as read-only, and dualnet does not guess otherwise;
  - crossing sides copies: host onto "gpu:N" (to that device), CUDA onto "ref"/"cpu"/"emu" (to
    the host, through CuPy), and CUDA device M onto "gpu:N";
  - "emu" receives the array as `dn.to_device(array, "emu")` makes it;
  - the dtype and shape are the producer's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import Device, get_device, get_device_object, to_device

__all__ = ["from_dlpack"]

# DLPack's DLDeviceType codes
_CPU, _CUDA, _CUDA_HOST, _CUDA_MANAGED = 1, 2, 3, 13
_HOST_TYPES = (_CPU, _CUDA_HOST)  # pinned host memory is ordinary host memory to NumPy
_CUDA_TYPES = (_CUDA, _CUDA_MANAGED)


def _declared_read_only(obj: Any) -> bool:
    """True when the producer says it is read-only where it can be seen (a `flags.writeable`)."""
    flags = getattr(obj, "flags", None)
    return getattr(flags, "writeable", True) is False


def _cupy(what: str) -> Any:
    try:
        import cupy
    except ImportError:
        raise TypeError(f"from_dlpack: {what} needs CuPy; install it with `pip install dualnet[gpu]`, "
                        "or move the tensor to the host in its framework first (e.g. tensor.cpu())") from None
    return cupy


def from_dlpack(obj: Any, device: str | Device | None = None) -> Any:
    """Any DLPack producer (an object with __dlpack__ and __dlpack_device__) as an array of `device`
    (None: the current device). x: any shape and dtype; the result has the same ones.

    Shares memory with a writable producer on the same side that speaks DLPack 1.0 (PyTorch,
    NumPy >= 2.1, CuPy), copies otherwise (see the module docstring for the full promise).
    TypeError names the object's type when it is no producer.
    """
    dev = get_device() if device is None else get_device_object(device)
    if not (hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__")):
        raise TypeError(f"from_dlpack: {type(obj).__name__} is not a DLPack producer (it needs __dlpack__ and "
                        "__dlpack_device__); pass a PyTorch/JAX/CuPy/NumPy array, or convert it with np.asarray")
    kind, index = (int(v) for v in obj.__dlpack_device__())
    if kind in _HOST_TYPES:
        host = np.from_dlpack(obj)
        if _declared_read_only(obj) or not host.flags.writeable:
            host = host.copy()
        # to_device keeps a host array as it is on "ref"/"cpu" and copies it onto a GPU
        return to_device(host, dev)
    if kind in _CUDA_TYPES:
        cupy = _cupy(f"a tensor on CUDA device {index}")
        with cupy.cuda.Device(index):
            arr = cupy.from_dlpack(obj)
        if _declared_read_only(obj):
            arr = arr.copy()
        if dev.kind != "gpu":
            return to_device(arr.get(), dev)
        if dev.index != index:
            with cupy.cuda.Device(dev.index):
                return arr.copy()  # CuPy copies an array of another device onto the current one
        return arr
    raise TypeError(f"from_dlpack: {type(obj).__name__} lives on DLPack device type {kind} (index {index}); "
                    "dualnet takes host (1, 3) and CUDA (2, 13) memory: move it to the CPU or a CUDA device first")
