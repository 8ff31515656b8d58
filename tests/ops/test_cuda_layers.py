"""The real-model layers' kernels (softmax.cu, pad.cu, upsample.cu) agree with the reference ops, on
the checking emulator with tiny grids (and on "gpu" where CuPy sees one), float32 and float64."""

from __future__ import annotations

from cuda_agreement import DEVICES, DTYPES, REF, agree, kernel_ops
from hypothesis import given
from hypothesis import strategies as st

from dualnet.ops.geometry import Window
from dualnet.ops.reference_layers import PAD_MODES, UPSAMPLE_MODES
from dualnet.testing import tie_free, uniform

shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)


@DEVICES
@given(shapes, st.data(), st.booleans(), DTYPES, st.integers(0, 2**16))
def test_softmax_forward_and_backward_agree(device, shape, data, log, dtype, seed):
    dim = data.draw(st.integers(0, len(shape) - 1))
    x, dy = uniform(shape, seed, dtype, -8, 8), uniform(shape, seed + 1, dtype)
    y = REF.softmax_forward(x, dim, log)
    agree(y, kernel_ops(device).softmax_forward(x, dim, log), dtype, reduction=shape[dim])
    agree(REF.softmax_backward(dy, y, dim, log), kernel_ops(device).softmax_backward(dy, y, dim, log), dtype,
          reduction=shape[dim])


@st.composite
def pads(draw):
    mode = draw(st.sampled_from(PAD_MODES))
    h, w = draw(st.integers(2, 7)), draw(st.integers(2, 7))
    if mode == "reflect":
        p = (draw(st.integers(0, w - 1)), draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1)),
             draw(st.integers(0, h - 1)))
    else:
        low = -1 if mode == "constant" else 0
        p = tuple(draw(st.integers(low, 4)) for _ in range(4))
    return mode, p, (draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w)


@DEVICES
@given(pads(), DTYPES, st.integers(0, 2**16))
def test_pad2d_forward_and_backward_agree(device, case, dtype, seed):
    mode, p, shape = case
    x = uniform(shape, seed, dtype)
    y = REF.pad2d_forward(x, p, mode, 0.5)
    agree(y, kernel_ops(device).pad2d_forward(x, p, mode, 0.5), dtype)
    dy = uniform(y.shape, seed + 1, dtype)
    agree(REF.pad2d_backward(dy, shape, p, mode), kernel_ops(device).pad2d_backward(dy, shape, p, mode), dtype,
          reduction=16)


@DEVICES
@given(st.sampled_from(UPSAMPLE_MODES), st.booleans(), st.integers(1, 6), st.integers(1, 6),
       st.sampled_from([None, 0.5, 1.5, 2.0, 3.0]), st.integers(1, 13), DTYPES, st.integers(0, 2**16))
def test_upsample_forward_and_backward_agree(device, mode, align, h, w, scale, out, dtype, seed):
    align = align and mode == "bilinear"
    out_hw = (int(h * scale), int(w * scale)) if scale else (out, max(1, out - 2))
    if min(out_hw) < 1:
        out_hw = (max(1, out_hw[0]), max(1, out_hw[1]))
        scale = None
    scales = (scale, scale)
    x = uniform((2, 2, h, w), seed, dtype)
    y = REF.upsample_forward(x, out_hw, scales, mode, align)
    agree(y, kernel_ops(device).upsample_forward(x, out_hw, scales, mode, align), dtype, reduction=4)
    dy = uniform(y.shape, seed + 1, dtype)
    agree(REF.upsample_backward(dy, x.shape, scales, mode, align),
          kernel_ops(device).upsample_backward(dy, x.shape, scales, mode, align), dtype,
          reduction=4 * max(1, out_hw[0] // h + 2) * max(1, out_hw[1] // w + 2))


@st.composite
def pool_windows(draw):
    """A pooling Window with dilation, ceil_mode and a padding at most half the kernel."""
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h = draw(st.integers(max(1, (k[0] - 1) * d[0] + 1 - 2 * p[0]), 12))
    w = draw(st.integers(max(1, (k[1] - 1) * d[1] + 1 - 2 * p[1]), 12))
    geom = Window.of(h, w, k, s, p, d, "pool", draw(st.booleans()))
    return geom, (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)


@DEVICES
@given(pool_windows(), DTYPES, st.integers(0, 2**16))
def test_dilated_ceil_mode_max_pooling_agrees(device, case, dtype, seed):
    geom, shape = case
    x = tie_free(shape, seed, dtype)
    y, arg = REF.maxpool_forward(x, geom)
    agree((y, arg), kernel_ops(device).maxpool_forward(x, geom), dtype)
    dy = uniform(y.shape, seed + 1, dtype)
    agree(REF.maxpool_backward(dy, arg, shape, geom), kernel_ops(device).maxpool_backward(dy, arg, shape, geom),
          dtype, reduction=geom.kh * geom.kw)


@DEVICES
@given(pool_windows(), st.booleans(), DTYPES, st.integers(0, 2**16))
def test_average_pooling_divisors_agree(device, case, include_pad, dtype, seed):
    geom, shape = case
    x = uniform(shape, seed, dtype)
    y = REF.avgpool_forward(x, geom, include_pad)
    agree(y, kernel_ops(device).avgpool_forward(x, geom, include_pad), dtype, reduction=geom.kh * geom.kw)
    dy = uniform(y.shape, seed + 1, dtype)
    agree(REF.avgpool_backward(dy, shape, geom, include_pad),
          kernel_ops(device).avgpool_backward(dy, shape, geom, include_pad), dtype, reduction=geom.kh * geom.kw)
