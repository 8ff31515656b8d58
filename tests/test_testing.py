"""dn.testing's agreement tolerances: by dtype, wider with a real GPU, growing with the length of
the sums behind an output."""

from __future__ import annotations

import numpy as np
import pytest

from dualnet.testing import assert_devices_agree, default_tolerance, involves_gpu


def test_documented_host_and_gpu_tolerances():
    assert default_tolerance(np.float64) == (1e-10, 1e-12)
    assert default_tolerance(np.float32) == (1e-4, 1e-5)
    assert default_tolerance(np.float64, gpu=True) == (1e-8, 1e-10)
    assert default_tolerance(np.float32, gpu=True) == (1e-3, 1e-4)
    assert default_tolerance(np.int32, gpu=True) == (0.0, 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tolerance_grows_with_the_square_root_of_the_reduction_length(dtype):
    base_r, base_a = default_tolerance(dtype)
    r1, a1 = default_tolerance(dtype, reduction=100)
    r2, a2 = default_tolerance(dtype, reduction=400, scale=3.0)
    eps = np.finfo(dtype).eps
    assert r1 - base_r == pytest.approx(80 * eps) and a1 - base_a == pytest.approx(80 * eps)
    assert r2 - base_r == pytest.approx(2 * (r1 - base_r)) and a2 - base_a == pytest.approx(3 * 160 * eps)


def test_float32_gemm_summation_orders_agree_within_the_scaled_tolerance():
    """Two orders of a K = 2,700 float32 sum (as OpenBLAS and cuBLAS pick) stay within it."""
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (64, 2700)).astype(np.float32)
    b = rng.uniform(-1, 1, (2700, 8)).astype(np.float32)
    pairwise = a @ b
    sequential = np.zeros((64, 8), np.float32)
    for i in range(0, 2700, 300):  # another blocking of the same sums
        sequential += a[:, i:i + 300] @ b[i:i + 300]
    rtol, atol = default_tolerance(np.float32, reduction=2700)
    np.testing.assert_allclose(sequential, pairwise, rtol=rtol, atol=atol)


def test_a_gpu_among_the_devices_is_recognised():
    assert involves_gpu(["cpu", "gpu"]) and involves_gpu(("ref", "gpu:1"))
    assert not involves_gpu(("ref", "cpu", "emu"))


def test_disagreement_names_both_devices_and_the_element():
    def differs(x):
        from dualnet import get_device

        return x + (1e-3 if get_device().name == "cpu" else 0.0)

    with pytest.raises(AssertionError, match="cpu disagrees with ref at"):
        assert_devices_agree(differs, np.zeros(3), devices=("ref", "cpu"))
