"""ops/cpu_layout.py's relu_in_place gives numpy.maximum(a, 0)'s values exactly for every size and
layout (whole zero rows, a shorter last part, small and non-contiguous arrays, NaN and -0.0)."""

from __future__ import annotations

import numpy as np
import pytest

from dualnet.ops.cpu_layout import ZERO_ROW, relu_in_place


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (ZERO_ROW,), (3, ZERO_ROW), (5, 1000, 9), (16, 8, 8, 64), (2, 3)])
@pytest.mark.parametrize("contiguous", [True, False])
def test_relu_in_place_equals_maximum_with_zero(dtype, shape, contiguous):
    a = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    a.reshape(-1)[:4] = [np.nan, -0.0, 0.0, -np.inf]
    if not contiguous:
        a = np.moveaxis(a, 0, -1)
    expected = np.maximum(a, 0)
    relu_in_place(a)
    bits = np.dtype(f"u{np.dtype(dtype).itemsize}")  # bit for bit: the sign of zero and NaN included
    np.testing.assert_array_equal(np.ascontiguousarray(a).view(bits), np.ascontiguousarray(expected).view(bits))
