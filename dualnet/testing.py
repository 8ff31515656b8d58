"""Public test helpers: Hypothesis strategies for layer geometries and device agreement.

Use them to property-test your own layers and kernels:

    @given(dn.testing.conv_geometries())
    def test_my_conv(g): ...
"""

from __future__ import annotations

import os
import pathlib
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st

from .backend import device as device_scope
from .backend import to_device, to_numpy
from .ops.geometry import ConvGeometry, PoolGeometry

__all__ = ["tensorboard_scalars", "conv_geometries", "pool_geometries", "tiling_pool_geometries", "linear_geometries",
           "invalid_conv_geometries", "invalid_pool_geometries", "tie_free", "uniform", "assert_devices_agree",
           "conv_layer_kwargs", "default_tolerance", "involves_gpu", "norm_shapes", "param_grads"]


@st.composite
def conv_geometries(draw: Any, max_size: int = 20, max_batch: int = 4, max_channels: int = 6) -> dict:
    """A valid Conv2d geometry: batch 1-4, channels 1-6 with groups dividing both counts,
    kernels 1-5 (non-square allowed), stride 1-3, padding 0-3, dilation 1-3, and an input just
    large enough for a 1x1 output up to ~max_size (larger when dilation demands it).

    A dict: n, c, out_channels, groups, h, w, kernel_size, stride, padding, dilation, out_h,
    out_w, and geom (the ConvGeometry the ops take)."""
    groups = draw(st.integers(1, 3))
    cin = groups * draw(st.integers(1, max(1, max_channels // groups)))
    cout = groups * draw(st.integers(1, max(1, max_channels // groups)))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    min_h = max(1, dh * (kh - 1) + 1 - 2 * ph)
    min_w = max(1, dw * (kw - 1) + 1 - 2 * pw)
    h = draw(st.integers(min_h, max(min_h, max_size)))
    w = draw(st.integers(min_w, max(min_w, max_size)))
    n = draw(st.integers(1, max_batch))
    geom = ConvGeometry.of(h, w, (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    return dict(n=n, c=cin, out_channels=cout, groups=groups, h=h, w=w, kernel_size=(kh, kw),
                stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), out_h=geom.out_h, out_w=geom.out_w,
                geom=geom)


def conv_layer_kwargs(g: dict) -> dict:
    """Conv2d constructor arguments of a geometry drawn by conv_geometries."""
    return dict(in_channels=g["c"], out_channels=g["out_channels"], kernel_size=g["kernel_size"],
                stride=g["stride"], padding=g["padding"], dilation=g["dilation"], groups=g["groups"])


@st.composite
def pool_geometries(draw: Any, max_size: int = 20, max_batch: int = 4, max_channels: int = 6) -> dict:
    """A valid pooling geometry: kernel 1-5, stride 1-3 (overlapping windows included),
    padding at most half the kernel. A dict: n, c, h, w, kernel_size, stride, padding, out_h,
    out_w, and geom (the PoolGeometry the ops take)."""
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), max(kh, max_size)))
    w = draw(st.integers(max(1, kw - 2 * pw), max(kw, max_size)))
    geom = PoolGeometry.of(h, w, (kh, kw), (sh, sw), (ph, pw))
    return dict(n=draw(st.integers(1, max_batch)), c=draw(st.integers(1, max_channels)), h=h, w=w,
                kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw), out_h=geom.out_h, out_w=geom.out_w,
                geom=geom)


@st.composite
def tiling_pool_geometries(draw: Any, max_out: int = 6) -> PoolGeometry:
    """Pooling whose windows tile its input (kernel == stride, no padding, nothing left over):
    the case the CPU's fast max pooling covers. The input is (out_h * kh, out_w * kw)."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    oh, ow = draw(st.integers(1, max_out)), draw(st.integers(1, max_out))
    return PoolGeometry(kh, kw, kh, kw, 0, 0, 1, 1, oh, ow)


@st.composite
def linear_geometries(draw: Any) -> dict:
    return dict(n=draw(st.integers(1, 4)), in_features=draw(st.integers(1, 24)),
                out_features=draw(st.integers(1, 24)))


@st.composite
def invalid_conv_geometries(draw: Any) -> tuple[dict, tuple[int, ...], str]:
    """(Conv2d kwargs, input shape, what is wrong) where either the constructor or forward
    must raise ValueError: empty output, groups not dividing the channels, wrong rank, wrong
    channel count, non-positive sizes."""
    kind = draw(st.sampled_from(["empty", "groups", "rank", "channels", "nonpositive"]))
    k = draw(st.integers(2, 5))
    kwargs = dict(in_channels=2, out_channels=4, kernel_size=k)
    shape: tuple[int, ...] = (1, 2, 8, 8)
    if kind == "empty":
        size = draw(st.integers(1, k - 1))
        shape = (1, 2, size, draw(st.integers(1, 10)))
    elif kind == "groups":
        kwargs.update(in_channels=draw(st.sampled_from([3, 5])), groups=2)
        shape = (1, kwargs["in_channels"], 8, 8)
    elif kind == "rank":
        shape = draw(st.sampled_from([(2, 8, 8), (8,), (1, 1, 2, 8, 8)]))
    elif kind == "channels":
        shape = (1, draw(st.sampled_from([1, 3, 4])), 8, 8)
    else:
        field = draw(st.sampled_from(["in_channels", "out_channels", "kernel_size", "stride", "dilation"]))
        kwargs[field] = draw(st.sampled_from([0, -1, (0, 1), (1, -2)])) if field not in (
            "in_channels", "out_channels") else draw(st.sampled_from([0, -3]))
    return kwargs, shape, kind


@st.composite
def invalid_pool_geometries(draw: Any) -> tuple[dict, tuple[int, ...], str]:
    kind = draw(st.sampled_from(["empty", "padding", "rank", "nonpositive"]))
    k = draw(st.integers(2, 5))
    kwargs: dict = dict(kernel_size=k)
    shape: tuple[int, ...] = (1, 2, 8, 8)
    if kind == "empty":
        shape = (1, 2, draw(st.integers(1, k - 1)), 8)
    elif kind == "padding":
        kwargs["padding"] = k // 2 + draw(st.integers(1, 2))
    elif kind == "rank":
        shape = (2, 8, 8)
    else:
        kwargs[draw(st.sampled_from(["kernel_size", "stride"]))] = draw(st.sampled_from([0, -2]))
    return kwargs, shape, kind


@st.composite
def norm_shapes(draw: Any, spatial_dims: int = 2, max_batch: int = 5, max_channels: int = 5,
                max_size: int = 6) -> tuple[int, ...]:
    """An input shape (N, C, *spatial) for batch normalization with `spatial_dims` spatial axes
    (2: BatchNorm2d, 0 or 1: BatchNorm1d), holding at least 2 values per channel (training
    needs a variance)."""
    n = draw(st.integers(1, max_batch))
    c = draw(st.integers(1, max_channels))
    spatial = tuple(draw(st.integers(1, max_size)) for _ in range(spatial_dims))
    if n * int(np.prod(spatial)) < 2:
        n = 2
    return (n, c, *spatial)


def tie_free(shape: Sequence[int], seed: int = 0, dtype: Any = np.float64) -> np.ndarray:
    """Distinct values (a shuffled linspace over [-1, 1]): max pooling has no ties, and the
    gap between values (2 / size) dwarfs a finite-difference step."""
    size = int(np.prod(shape))
    values = np.linspace(-1.0, 1.0, size)
    np.random.default_rng(seed).shuffle(values)
    return values.reshape(shape).astype(dtype)


def uniform(shape: Sequence[int], seed: int = 0, dtype: Any = np.float64, low: float = -1.0,
            high: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, size=tuple(shape)).astype(dtype)


def param_grads(backward: Callable[..., Any], *args: Any, weight_shape: Sequence[int], bias: int | None,
                dtype: Any, need_dx: bool = True, xp: Any = np) -> tuple[Any, Any, Any]:
    """(dx, dweight, dbias) of a backward op that adds its parameter gradients into buffers
    (conv2d_backward, linear_backward, conv_relu_maxpool_backward, the batch-norm backwards: `args`,
    then wgrad, bgrad, need_dx): buffers of array module `xp` that start at zero (so they hold the
    gradients exactly); `bias` is the bias length, or None for no bias (dbias None)."""
    wgrad = xp.zeros(tuple(weight_shape), dtype)
    bgrad = xp.zeros(bias, dtype) if bias is not None else None
    dx = backward(*args, wgrad, bgrad, need_dx)
    return dx, wgrad, bgrad


def _as_tuple(out: Any) -> tuple:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


#: (rtol, atol) by dtype when only host tables and "emu" take part: float64 results differ only
#: by the order of sums (the fast tables reorder them; g++ contracts no multiply-adds), float32
#: ones by float32 rounding of such sums
_TOLERANCE = {np.dtype(np.float64): (1e-10, 1e-12), np.dtype(np.float32): (1e-4, 1e-5),
              np.dtype(np.float16): (1e-2, 1e-3)}
#: ... and when a real GPU takes part: NVCC/NVRTC contract a*b+c into FMAs, CUDA's expf/logf differ
#: from glibc's by an ulp and cuBLAS sums a product in its own blocked order
_GPU_TOLERANCE = {np.dtype(np.float64): (1e-8, 1e-10), np.dtype(np.float32): (1e-3, 1e-4),
                  np.dtype(np.float16): (1e-2, 1e-2)}


def default_tolerance(dtype: Any, gpu: bool = False, reduction: int = 1, scale: float = 1.0) -> tuple[float, float]:
    """(rtol, atol) that assert_devices_agree uses for outputs of `dtype` unless told otherwise.

    Host tables and "emu": float64 (1e-10, 1e-12), float32 (1e-4, 1e-5), float16 (1e-2, 1e-3).
    With a real GPU (gpu=True): float64 (1e-8, 1e-10), float32 (1e-3, 1e-4), float16 (1e-2, 1e-2).
    Outputs that sum `reduction` terms of magnitude about `scale` (a GEMM's K, a softmax row's k)
    get 8 * sqrt(reduction) * eps of the dtype added to rtol, and that times `scale` to atol: two
    summation orders differ by about sqrt(K) roundings of the terms, and a sum that cancels to
    ~0 can only be compared absolutely. Integer and boolean outputs are exact (0, 0): no
    reordering of sums can change them.
    """
    dt = np.dtype(dtype)
    if dt.kind != "f":
        return 0.0, 0.0
    table = _GPU_TOLERANCE if gpu else _TOLERANCE
    rtol, atol = table.get(dt, table[np.dtype(np.float32)])
    grow = 8.0 * float(np.sqrt(reduction)) * float(np.finfo(dt).eps) if reduction > 1 else 0.0
    return rtol + grow, atol + grow * float(scale)


def involves_gpu(devices: Sequence[str]) -> bool:
    """Whether a real GPU ("gpu", "gpu:N") is among `devices` ("emu" is not one)."""
    return any(str(d).strip().lower().startswith("gpu") for d in devices)


def assert_devices_agree(fn: Callable[..., Any], *inputs: Any, devices: Sequence[str] = ("ref", "cpu", "emu"),
                         rtol: float | None = None, atol: float | None = None, reduction: int = 1,
                         scale: float = 1.0) -> list[tuple]:
    """Run `fn(*inputs)` on each device (inputs moved there, fn called inside `with
    dn.device(d)`) and assert every output equals the first device's (by default "ref", the
    reference ops) within rtol/atol.

    Tolerances left as None come from each output's dtype and from whether a real GPU ("gpu",
    "gpu:N") is among `devices` (`default_tolerance`: float32 1e-4 relative between host tables
    and "emu", 1e-3 with a GPU, whose FMAs, expf/logf and cuBLAS summation order differ from the
    host's; float64 1e-10 and 1e-8). `reduction` (the longest sum behind an output, e.g. a
    convolution's C*kh*kw) and `scale` (the magnitude of its terms) widen them as
    `default_tolerance` says. Returns the outputs per device as NumPy arrays (moved with
    `to_numpy`: device arrays never convert implicitly). The message names both devices, the
    output index, the worst element and both values.
    """
    gpu = involves_gpu(devices)
    results = []
    for name in devices:
        with device_scope(name):
            moved = [to_device(a, name) if isinstance(a, np.ndarray) else a for a in inputs]
            out = _as_tuple(fn(*moved))
        results.append(tuple(None if o is None else to_numpy(o) for o in out))
    ref = results[0]
    for name, res in zip(devices[1:], results[1:]):
        if len(res) != len(ref):
            raise AssertionError(f"{devices[0]} returned {len(ref)} outputs, {name} returned {len(res)}")
        for i, (a, b) in enumerate(zip(ref, res)):
            if a is None and b is None:
                continue
            if a is None or b is None or a.shape != b.shape or a.dtype != b.dtype:
                raise AssertionError(f"output {i}: {devices[0]} gave {getattr(a, 'shape', None)} "
                                     f"{getattr(a, 'dtype', None)}, {name} gave {getattr(b, 'shape', None)} "
                                     f"{getattr(b, 'dtype', None)}")
            d_rtol, d_atol = default_tolerance(a.dtype, gpu, reduction, scale)
            r = d_rtol if rtol is None else rtol
            t = d_atol if atol is None else atol
            if not np.allclose(b, a, rtol=r, atol=t, equal_nan=True):
                err = np.abs(b.astype(np.float64) - a) - r * np.abs(a)
                k = np.unravel_index(int(np.argmax(err)), a.shape)
                raise AssertionError(f"output {i}: {name} disagrees with {devices[0]} at {k}: "
                                     f"{b[k]!r} vs {a[k]!r} (rtol {r:g}, atol {t:g})")
    return results


def tensorboard_scalars(logdir: str | os.PathLike) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} of the scalars under `logdir` as TensorBoard shows them: files in the
    order written (their names start with the time), a session restarted with `purge_step` hiding
    the earlier files' events from that step on. Needs tensorboardX (its protobuf definitions)."""
    from tensorboardX.proto import event_pb2

    shown: dict[str, dict[int, float]] = {}
    for path in sorted(pathlib.Path(logdir).iterdir()):
        data, at = path.read_bytes(), 0
        while at < len(data):  # records: u64 length, u32 crc, payload, u32 crc
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
            at += 12 + length + 4
            if event.HasField("session_log") and event.session_log.status == event.session_log.START:
                for steps in shown.values():
                    for step in [s for s in steps if s >= event.step]:
                        del steps[step]
            for value in event.summary.value:
                shown.setdefault(value.tag, {})[event.step] = value.simple_value
    return shown
