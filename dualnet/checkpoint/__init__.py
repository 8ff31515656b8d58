"""Checkpoints: one HDF5 file per model, written atomically, never pickled.

    dn.save(model, "runs/lenet5.h5", optimizer=opt, history=history, note="first try")
    ckpt = dn.checkpoint.read("runs/lenet5.h5")     # Checkpoint: model, optimizer_state, history, ...
    model = dn.load("runs/lenet5.h5")

Modules: writer (`save`, `check_writable`), reader (`read`, `load`, `Checkpoint`: every structure,
shape, dtype and size checked before use), format (the HDF5 layout and its version), layer_state
(buffers and Dropout RNGs). The file itself is written by dualnet.outputs, the guarded writer
every output shares. Every problem a user can cause raises
CheckpointError naming the file and the problem.
"""

from __future__ import annotations

from .format import FORMAT, FORMAT_VERSION
from .reader import Checkpoint, load, read
from .writer import check_writable, save

__all__ = ["FORMAT", "FORMAT_VERSION", "Checkpoint", "check_writable", "load", "read", "save"]
