"""Op tables: NumpyOps (reference) and CupyOps / EmulatedOps (kernel-backed)."""

from .numpy_ops import NumpyOps, out_size

__all__ = ["NumpyOps", "out_size"]
