"""conv_dgrad (kernels/conv_dgrad.cu), a convolution's input gradient as one implicit GEMM, on the
checking emulator (each launch under four thread schedules, outputs required bitwise equal) against
the reference's column path (the column gradient, then col2im): float64 within 1e-12 relative;
float32 within 1e-5 of the largest |dx| (its fixed K order, taps then output channels, is not
BLAS's; a sum of up to a few hundred float32 products). Shapes cover strides 1 and 2, padding,
dilation, 1x1 and 3x3 (and non-square) kernels, odd sizes that leave tiles partly empty in both
channels and pixels, each tile height (16, 32, 64 channels), more than one tile each way, and the
stride phases (unequal strides, taps that reach only some phases, none at all for some)."""

from __future__ import annotations

import numpy as np
import pytest

import dualnet as dn
from dualnet.emu_array import EMU
from dualnet.ops.cuda import EmulatedOps, dgrad_tile_channels
from dualnet.ops.geometry import ConvGeometry
from dualnet.ops.reference import ReferenceOps

REF = ReferenceOps()
#: (n, c, h, w, o, (kh, kw), stride, padding, dilation)
CASES = [
    (2, 3, 5, 7, 4, (3, 3), 1, 1, 1),
    (3, 5, 11, 9, 6, (3, 3), 2, 1, 1),     # stride 2, odd sizes; 297 pixels: two tiles of 256
    (1, 17, 6, 5, 9, (1, 1), 2, 0, 1),     # 1x1 stride 2 (a ResNet shortcut), tile height 32
    (2, 33, 5, 5, 3, (3, 3), 1, 2, 2),     # dilation 2, tile height 64
    (1, 70, 4, 3, 10, (3, 2), 1, 1, 1),    # two tiles of channels, a non-square kernel
    (2, 4, 6, 6, 11, (5, 5), 3, 2, 1),     # kernel larger than the stride, o not a multiple of 8
    (2, 6, 9, 10, 5, (3, 3), (2, 3), 1, (2, 1)),  # unequal strides (6 phases), dilated rows
    (1, 4, 7, 7, 3, (2, 2), 2, 0, 1),      # a 2x2 stride-2 kernel: one tap per phase
]


def _inputs(case, dtype, seed=0):
    n, c, h, w, o, (kh, kw), s, p, d = case
    geom = ConvGeometry.of(h, w, (kh, kw), np.broadcast_to(s, 2).tolist(), (p, p, p, p),
                           np.broadcast_to(d, 2).tolist(), "conv")
    rng = np.random.default_rng(seed)
    dy = rng.standard_normal((n, o, geom.out_h, geom.out_w)).astype(dtype)
    weight = rng.standard_normal((o, c, kh, kw)).astype(dtype)
    add = rng.standard_normal((n, c, h, w)).astype(dtype)
    return geom, dy, weight, add


def _want(case, geom, dy, weight, add):
    x_shape = case[:4]
    want = REF.conv2d_input_grad(dy.astype(np.float64), weight.astype(np.float64), x_shape, geom, 1)
    return want if add is None else want + add


def _launch(launcher, case, geom, dy, weight, add):
    n, c, h, w, o = case[:5]
    dx = np.empty((n, c, h, w), dy.dtype)
    dy_cm = np.ascontiguousarray(dy.transpose(1, 0, 2, 3))  # the GPU table's products' layout
    launcher.launch("conv_dgrad", dy.dtype, dy_cm, weight, np.empty(0, dy.dtype) if add is None else add, dx,
                    n, c, h, w, o, *geom, dgrad_tile_channels(c), int(add is not None))
    return dx


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("with_add", [True, False])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv_dgrad_is_the_column_paths_input_gradient(emu, case, dtype, with_add):
    geom, dy, weight, add = _inputs(case, dtype)
    dx = _launch(emu, case, geom, dy, weight, add if with_add else None)
    want = _want(case, geom, dy, weight, add if with_add else None)
    scale = float(np.abs(want).max())
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(dx, want, rtol=0, atol=tol * scale)


def test_conv_dgrad_is_deterministic_and_adds_after_the_whole_sum(emu):
    """Two launches give the same bits; with the addend, exactly (the sum without it) + addend."""
    case = CASES[1]
    geom, dy, weight, add = _inputs(case, np.float32, seed=3)
    plain = _launch(emu, case, geom, dy, weight, None)
    np.testing.assert_array_equal(_launch(emu, case, geom, dy, weight, None), plain)
    np.testing.assert_array_equal(_launch(emu, case, geom, dy, weight, add), plain + add)


@pytest.mark.parametrize("groups", [1, 2])
def test_the_gpu_table_runs_it_for_plain_convolutions_and_the_column_path_for_grouped_ones(groups, monkeypatch):
    """EmulatedOps.conv2d_backward: groups == 1 launches conv_dgrad (no col2im), groups 2 the product
    and col2im; both agree with the reference op, dx_add included."""
    ops = EmulatedOps()
    rng = np.random.default_rng(groups)
    x = rng.standard_normal((2, 4, 7, 6))
    weight = rng.standard_normal((6, 4 // groups, 3, 3))
    geom = ConvGeometry.of(7, 6, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), "conv")
    dy = rng.standard_normal((2, 6, geom.out_h, geom.out_w))
    add = rng.standard_normal(x.shape)
    _, cols = REF.conv2d_forward(x, weight, None, geom, groups)
    want = REF.conv2d_backward(dy, cols, weight, x.shape, geom, groups, None, None, True, add)
    launched: list[str] = []
    launch = ops.launcher.launch
    monkeypatch.setattr(ops.launcher, "launch", lambda name, *a: (launched.append(name), launch(name, *a))[1])
    _, ecols = ops.conv2d_forward(EMU.asarray(x), EMU.asarray(weight), None, geom, groups)
    got = ops.conv2d_backward(EMU.asarray(dy), ecols, EMU.asarray(weight), x.shape, geom, groups, None, None, True,
                              EMU.asarray(add))
    np.testing.assert_allclose(dn.to_numpy(got), want, rtol=1e-12, atol=1e-12)
    assert ("conv_dgrad" in launched) == (groups == 1) and ("col2im" in launched) == (groups != 1), launched
