"""The GPU table's products (ops/products.py): 2-D views, so CuPy makes no hidden copy, and one TF32
policy (off unless switched on) for every product alike.

Counted on the counting stand-in cupy (tests/standins/counting_cupy.py: shapes, strides and CuPy's documented copy and
compute-type rules, no data); the fit-step counts run gpu_host_overhead.py in a child process,
whose `import cupy` is the stand-in.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from standins import counting_cupy as standin_cupy

import dualnet as dn
from dualnet.ops import products

ROOT = pathlib.Path(__file__).resolve().parents[2]
COUNTER = standin_cupy.COUNTER


@pytest.fixture
def counted():
    COUNTER.reset()
    yield COUNTER
    COUNTER.reset()


@pytest.fixture
def tf32_restored():
    before = dn.tf32_enabled()
    yield
    dn.set_tf32(before)


def _table() -> products.ProductOps:
    ops = products.ProductOps()
    ops.xp = standin_cupy
    return ops


def test_the_stand_in_counts_the_copies_cupy_hides_inside_matmul(counted):
    """A batched product copies any operand that is not C-contiguous; a 2-D product reads a transposed
    (F-contiguous) view through cuBLAS's flag but copies a view that is neither."""
    a = standin_cupy.empty((1, 8, 16), np.float32)
    b = standin_cupy.empty((1, 32, 16), np.float32)
    standin_cupy.matmul(a, b.transpose(0, 2, 1))
    assert counted.ops[("hidden_copy", "matmul_batched")] == 1
    standin_cupy.matmul(a[0], b[0].T)
    assert counted.ops[("hidden_copy", "matmul")] == 0
    standin_cupy.matmul(a[0], standin_cupy.empty((32, 32), np.float32)[::2].T)
    assert counted.ops[("hidden_copy", "matmul")] == 1


def test_products_ignore_cupys_own_tf32_setting_and_restore_it(counted, tf32_restored):
    """With TF32 off (dualnet's default) a product is exact float32 even where CuPy's setting says TF32
    (CUPY_TF32=1), and CuPy's setting is back afterwards; switched on, the same product is TF32."""
    linalg = standin_cupy._linalg
    old = linalg.get_compute_type(np.float32)
    ops = _table()
    a, b = standin_cupy.empty((4, 8), np.float32), standin_cupy.empty((8, 3), np.float32)
    try:
        linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_TF32)
        dn.set_tf32(False)
        ops._mm(a, b)
        assert counted.ops[("cublas", "matmul[fp32]")] == 1
        assert linalg.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_TF32
        linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_DEFAULT)
        dn.set_tf32(True)
        ops._mm(a, b)
        assert counted.ops[("cublas", "matmul[tf32]")] == 1
        assert linalg.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_DEFAULT
    finally:
        linalg.set_compute_type(np.float32, old)


def test_set_tf32_refuses_what_is_not_a_bool(tf32_restored):
    with pytest.raises(TypeError, match="set_tf32: expected True or False, got 1"):
        dn.set_tf32(1)  # type: ignore[arg-type]


@pytest.mark.parametrize("groups", [1, 2])
def test_conv_products_make_no_hidden_copy_and_write_groups_in_place(counted, groups):
    """Forward, weight and input gradients of a (grouped) convolution: one 2-D product per group and
    direction, no hidden copy, no concatenation."""
    ops = _table()
    ops.im2col = lambda x, geom: standin_cupy.empty((4, geom.kh, geom.kw, x.shape[0], geom.out_h, geom.out_w),
                                                    x.dtype)
    ops.col2im = lambda cols, shape, geom: standin_cupy.empty(shape, cols.dtype)
    ops.bias_act = lambda y, bias, act, channel_major: standin_cupy.empty((y.shape[1], y.shape[0], y.shape[2]),
                                                                          y.dtype)
    geom = dn.ops.ConvGeometry(3, 3, 1, 1, 1, 1, 1, 1, 6, 6)
    x = standin_cupy.empty((5, 4, 6, 6), np.float32)
    w = standin_cupy.empty((6, 4 // groups, 3, 3), np.float32)
    y, cols = ops.conv2d_forward(x, w, None, geom, groups)
    wgrad, bgrad = standin_cupy.empty(w.shape, np.float32), standin_cupy.empty(6, np.float32)
    ops.conv2d_backward(standin_cupy.empty(y.shape, np.float32), cols, w, x.shape, geom, groups, wgrad, bgrad)
    assert counted.ops[("cublas", "matmul[fp32]")] == 2 * groups  # forward, input gradient
    assert counted.ops[("cublas", "gemm[fp32]")] == groups  # the weight gradient, added in place (beta = 1)
    assert not any(kind == "hidden_copy" for kind, _ in counted.ops), counted.ops
    assert ("kernel", "concatenate") not in counted.ops


def _host_overhead(tmp_path, *args: str, env: dict | None = None) -> dict:
    out = tmp_path / "host.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_host_overhead.py"), "--steps", "3",
                           "--rounds", "1", "--no-peer", "--json", str(out), *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


def test_a_fit_step_makes_no_hidden_copy_and_runs_every_product_in_exact_float32(tmp_path):
    for model, batch in (("lenet5", "64"), ("resnet8", "8")):
        r = _host_overhead(tmp_path, "--model", model, "--batch", batch, env={"CUPY_TF32": "1"})
        assert r["hidden_copies_per_step"] == 0, r["ops_per_step_by_name"]
        assert set(r["products_per_step"]) == {"matmul[fp32]", "gemm[fp32]"}, r["products_per_step"]


def test_dualnet_tf32_switches_every_product_of_a_fit_step_to_tf32(tmp_path):
    r = _host_overhead(tmp_path, "--model", "resnet8", "--batch", "8", env={"DUALNET_TF32": "1"})
    assert set(r["products_per_step"]) == {"matmul[tf32]", "gemm[tf32]"}, r["products_per_step"]
    assert sum(r["products_per_step"].values()) >= 20
