"""dualnet: one body of CNN layer code on two backends, NumPy (reference) and CuPy (CUDA kernels).

    import dualnet as dn
    dn.use_device("cpu")            # or "gpu", "gpu:1", "emu"
    model = dn.models.lenet5()
    model.summary()
"""

from __future__ import annotations

import importlib
from typing import Any

from . import init, layers, losses, models, optim
from .backend import Device, DeviceInfo, device, devices, get_device, to_device, to_numpy, use_device
from .errors import (
    CheckpointError,
    DataError,
    DeviceError,
    DeviceMismatchError,
    DeviceUnavailableError,
    DualnetError,
    GradcheckError,
    UsageError,
)
from .gradcheck import gradcheck
from .layers import Parameter, Sequential, no_grad

__version__ = "0.1.0"

__all__ = [
    "Device", "DeviceInfo", "device", "devices", "get_device", "to_device", "to_numpy", "use_device",
    "CheckpointError", "DataError", "DeviceError", "DeviceMismatchError", "DeviceUnavailableError", "DualnetError",
    "GradcheckError", "UsageError", "load_data_for", "trained_on",
    "gradcheck", "Parameter", "Sequential", "no_grad", "init", "layers", "losses", "models",
    "optim", "data", "testing", "callbacks", "schedules", "fit", "evaluate", "save", "load", "run", "RunConfig",
    "train_run", "resume", "export_onnx", "from_dlpack", "predict", "inference", "finetune", "set_tf32", "tf32_enabled",
    "__version__",
]

# modules and functions whose imports are heavier (h5py) or need test-only packages
# (hypothesis) load on first use
_LAZY = {"data": ("data", None), "testing": ("testing", None), "plots": ("plots", None),
         "callbacks": ("callbacks", None), "schedules": ("schedules", None),
         "fit": ("train", "fit"), "evaluate": ("train", "evaluate"),
         "checkpoint": ("checkpoint", None), "save": ("checkpoint", "save"), "load": ("checkpoint", "load"),
         "images": ("data.images", None), "run": ("run", None), "RunConfig": ("run", "RunConfig"),
         "train_run": ("run", "train_run"), "resume": ("run", "resume"),
         "export": ("export", None), "export_onnx": ("export", "export_onnx"),
         "from_dlpack": ("interop", "from_dlpack"), "interop": ("interop", None),
         "distributed": ("distributed", None), "predict": ("inference", "predict"),
         "inference": ("inference", None), "finetune": ("finetune", None),
         "load_data_for": ("trained_data", "load_data_for"), "trained_on": ("trained_data", "trained_on"),
         "set_tf32": ("ops.products", "set_tf32"), "tf32_enabled": ("ops.products", "tf32_enabled")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = importlib.import_module(f".{module}", __name__)
        return mod if attr is None else getattr(mod, attr)
    raise AttributeError(f"module 'dualnet' has no attribute {name!r}")
