"""The CPU table's eval-mode helpers: how many images an eval forward runs at a time, and max
pooling without the masks only backward needs. Used by CpuOps.inference_in_chunks and
CpuOps.conv_relu_maxpool_inference (dualnet/ops/cpu.py); figures in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import numpy

#: input bytes per eval-mode chunk: LeNet-5's 28x28 float32 images go 83 at a time (measured best
#: of 8-128 on LeNet-5, benchmarks/RESULTS.md), CIFAR's 3x32x32 21 at a time (the same budget,
#: not measured separately: its larger activations per image ask for fewer images, not more)
INFERENCE_CHUNK_BYTES = 256 << 10
INFERENCE_CHUNK_LIMITS = (8, 256)


def inference_chunk(x) -> int:
    """Images per eval-mode chunk for x (n, ...): INFERENCE_CHUNK_BYTES of input, within limits."""
    per_image = max(1, x[:1].nbytes)
    low, high = INFERENCE_CHUNK_LIMITS
    return max(low, min(high, INFERENCE_CHUNK_BYTES // per_image))


def max_tiles(z, kh: int, kw: int):
    """z (c, kh*oh, kw*ow, n) -> (c, oh, ow, n), the maximum of each tiling window, no masks:
    rows first (their runs of kw*ow*n values are contiguous), then columns; measured 10-20%
    faster than the contiguous planes of cpu._pool_planes, which backward needs and eval does not."""
    rows = numpy.maximum(z[:, 0::kh], z[:, 1::kh]) if kh > 1 else z
    for i in range(2, kh):
        numpy.maximum(rows, z[:, i::kh], out=rows)
    if kw == 1:
        return rows
    best = numpy.maximum(rows[:, :, 0::kw], rows[:, :, 1::kw])
    for j in range(2, kw):
        numpy.maximum(best, rows[:, :, j::kw], out=best)
    return best
