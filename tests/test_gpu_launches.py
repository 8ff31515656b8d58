"""Launches per fit step on the "gpu" path, counted over the stand-in cupy (gpu_host_overhead.py in
a child process): the per-layer glue that does not need a launch launches nothing."""

from __future__ import annotations

import numpy as np
from benchmark_runs import benchmark_json

import dualnet as dn


def _per_step(tmp_path, model: str, batch: int) -> dict:
    r, _ = benchmark_json("gpu_host_overhead.py", tmp_path / "host.json", "--model", model, "--batch", batch,
                          "--steps", 3, "--rounds", 1, "--no-peer")
    return r["ops_per_step_by_name"]


def test_a_resnet_step_launches_no_zero_bias_no_batch_counter_and_one_kernel_per_batch_norm_each_way(tmp_path):
    """resnet8: 9 convolutions without bias, 9 batch norms, 3 residual blocks. No CuPy add is left:
    the forward sum is in the block's last batch norm (bn_forward), the residual gradients' sums in
    the input-gradient kernel of the body's first convolution (conv_dgrad, one per convolution but
    the first: no column gradient, no col2im); no transpose of a convolution's output or gradient; no
    zero-filled bias per convolution; each batch norm is one launch forward and one backward
    (bn_backward adds its two parameter gradients); each weight gradient is a product that adds into
    its buffer (no add kernel); the batch counter stays on the host."""
    by_name = _per_step(tmp_path, "resnet8", 8)
    assert by_name.get("kernel:add", 0) == 0, by_name
    assert by_name["kernel:dualnet:conv_dgrad"] == 8 and by_name.get("kernel:dualnet:col2im", 0) == 0, by_name
    assert by_name.get("kernel:ascontiguousarray", 0) == 0, by_name
    assert by_name.get("kernel:dualnet:bias_act_forward", 0) == 1, by_name  # the linear layer's bias
    assert by_name.get("memset:zeros", 0) == 0, by_name
    assert by_name.get("kernel:dualnet:accumulate_grads", 0) == 0, by_name  # bn_backward adds them
    bn = {k: v for k, v in by_name.items() if k.startswith("kernel:dualnet:bn_")}
    assert bn == {"kernel:dualnet:bn_forward": 9, "kernel:dualnet:bn_backward": 9}, by_name
    assert by_name["cublas:gemm[fp32]"] == 9 + 1, by_name


def test_the_batch_counter_kept_on_the_host_reads_as_a_device_counter():
    layer = dn.layers.BatchNorm2d(3).to("emu")
    x = dn.to_device(np.random.default_rng(0).random((4, 3, 5, 5), dtype=np.float32), "emu")
    for _ in range(3):
        layer(x)
    counter = layer.num_batches_tracked
    assert type(counter) is type(x) and counter.dtype == np.int64 and counter.shape == ()
    assert int(dn.to_numpy(counter)) == 3
    layer(x)
    assert int(dn.to_numpy(dict(layer.named_buffers())["num_batches_tracked"])) == 4
    layer.num_batches_tracked = dn.to_device(np.zeros((), np.int64), "emu")
    layer(x)
    assert int(dn.to_numpy(layer.num_batches_tracked)) == 1
