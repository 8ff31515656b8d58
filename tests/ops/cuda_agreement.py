"""What the kernel-backed ops' agreement tests share (test_cuda*.py): each device's ops behind a
HostView that takes and returns NumPy arrays, and the tolerances of an agreement.

float64 within 1e-12 relative (1e-10 on a real GPU, whose compiler fuses multiply-adds), float32
within 1e-5. The emulator runs in checking mode (NaN-filled outputs, guard zones) with tiny grids,
so every grid-stride loop wraps several times.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

from dualnet.ops.cuda import EmulatedOps
from dualnet.ops.reference import ReferenceOps

REF = ReferenceOps()
DTYPES = st.sampled_from([np.float64, np.float32])
_OPS: dict = {}


class HostView:
    """Calls a device's ops with NumPy arguments: moves them in, results (and arrays updated
    in place) back out, so one test body serves every device. The moves are explicit
    (`xp.asarray`, `.get()`): emu arrays refuse implicit ones, as CuPy's do."""

    def __init__(self, ops):
        self.ops = ops

    def __getattr__(self, name):
        fn = getattr(self.ops, name)
        xp = self.ops.xp

        def call(*args):
            moved = [_device(xp, a) for a in args]
            out = fn(*moved)
            for a, m in zip(args, moved):
                if isinstance(a, np.ndarray) and m is not a:
                    np.copyto(a, m.get())
            return _host(out)
        return call


def _device(xp, a):
    """Host arrays moved to the device, inside tuples too (a `saved` value passed back to a
    backward op); geometry NamedTuples keep their type."""
    if isinstance(a, np.ndarray):
        return xp.asarray(a)
    if isinstance(a, tuple):
        items = [_device(xp, x) for x in a]
        return type(a)(*items) if hasattr(a, "_fields") else tuple(items)
    return a


def _host(out):
    if isinstance(out, tuple):
        items = [_host(o) for o in out]
        return type(out)(*items) if hasattr(out, "_fields") else tuple(items)
    return out.get() if hasattr(out, "get") else out


def kernel_ops(name):
    if name not in _OPS:
        if name == "emu":
            _OPS[name] = HostView(EmulatedOps(check=True, block=32, max_blocks=3))
        else:
            from dualnet.ops.cuda import CupyOps
            _OPS[name] = HostView(CupyOps(0))
    return _OPS[name]


DEVICES = pytest.mark.parametrize("device", ["emu", pytest.param("gpu", marks=pytest.mark.gpu)])
_TOL: dict = {}


def tol(dtype, reduction=1, scale=1.0):
    """float64 within 1e-12 relative (1e-10 on a GPU: FMA contraction), float32 within 1e-5;
    outputs that sum `reduction` terms of magnitude `scale` get 8 * sqrt(reduction) * eps more
    (times `scale` absolutely): cuBLAS's summation order, CUDA's expf/logf."""
    grow = 8 * np.sqrt(reduction) * np.finfo(dtype).eps if reduction > 1 else 0.0
    if dtype == np.float64:
        return dict(rtol=_TOL.get("rtol64", 1e-12) + grow, atol=1e-13 + grow * scale)
    return dict(rtol=1e-5 + grow, atol=1e-6 + grow * scale)



def use_gpu_tolerance(on_gpu: bool) -> None:
    """float64 agreement within 1e-10 relative for a test on "gpu" (tests/ops/conftest.py sets it
    per test), 1e-12 elsewhere."""
    _TOL["rtol64"] = 1e-10 if on_gpu else 1e-12


def agree(a, b, dtype, reduction=1, scale=1.0):
    if isinstance(a, tuple):
        for x, y in zip(a, b):
            agree(x, y, dtype, reduction, scale)
        return
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    if a.dtype.kind in "iu":
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(b, a, **tol(dtype, reduction, scale))
