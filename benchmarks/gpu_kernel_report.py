"""Kernel cost report of one dualnet training step on the "gpu" path, without a GPU.

    python benchmarks/gpu_kernel_report.py --model resnet20 --batch-size 128 [--gpu h100-sxm] [--summary]

One `dn.fit` step runs over the stand-in cupy (benchmarks/standin_cupy.py: the real backend,
CupyOps, launcher and binding; kernels and products do no work but are recorded with their launch
shape and arguments). Each launch of the steady-state step (between the second and third batch
gathers of a 3-step fit) is costed with the roofline-and-latency model of kernel_cost.py for a named
GPU, and printed: kernel, grid x block, shared bytes, threads vs the GPU's capacity (waves), the
longest serial loop of a thread, bytes moved, FLOPs, the estimated time and what bounds it. Beside
the step total: the same model applied to the kernels PyTorch eager would run for the same model
(cuDNN implicit-GEMM convolutions, one-kernel batch norm, its own elementwise and loss kernels,
a multi-tensor SGD), same arithmetic (FP32 without TF32 on both sides).

ALL TIMES ARE ESTIMATES from a stated model (printed with the report), not measurements.

On a machine where `cupy` imports and sees a device, `--measure` adds measured times (CUDA
events, median of repeats) per kernel name beside the estimates, the achieved fraction of the
bandwidth and FLOP peaks, and PyTorch eager's measured step (gpu_kernel_measure.py).
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import pathlib
import sys
from collections.abc import Callable
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from kernel_cost import GPUS, Gpu, Launch, cost, gemm_launch, waves  # noqa: E402
from torch_ideal import torch_step_launches  # noqa: E402

#: per kernel of dualnet's table: (loop per item, FLOPs per iteration, instructions per iteration), as
#: expressions of the kernel's integer arguments. The loop is what one item of the launch size walks
#: serially; instructions count the index arithmetic (64-bit division and remainder: ~17 each; `w32` is 1
#: where im2col.cu's 32-bit index path applies, every index and a grid stride under 2**32: ~4x cheaper).
WORK: dict[str, tuple[str, str, str]] = {
    "im2col": ("1", "0", "200 // (1 + 3 * w32)"),
    "col2im": ("kh*kw", "1", "60 // (1 + 3 * w32)"),
    "maxpool_forward": ("kh*kw", "1", "20"),
    "maxpool_backward": ("kh*kw", "1", "30"),
    "avgpool_forward": ("kh*kw", "1", "20"),
    "avgpool_backward": ("kh*kw", "1", "30"),
    "bias_act_forward": ("1", "2", "40"),
    "relu_backward": ("1", "1", "10"),
    "leaky_relu_forward": ("1", "2", "10"),
    "leaky_relu_backward": ("1", "2", "10"),
    "softmax_xent_forward": ("3*k", "8", "20"),
    "softmax_xent_backward": ("1", "2", "20"),
    "sgd_update": ("1", "5", "15"),
    "adam_update": ("1", "15", "30"),
    "adamw_update": ("1", "15", "30"),
    "conv_relu_maxpool_forward": ("pkh*pkw*c*kh*kw", "2", "4"),
    "conv_relu_maxpool_dz": ("1", "1", "40"),
    "accumulate_grads": ("1", "1", "10"),
    "gather_batch": ("1", "0", "20"),
    "step_stats": ("chunk", "2", "4"),
    "bn_apply": ("1", "2", "20"),
    "global_avgpool_forward": ("inner", "1", "4"),
    "global_avgpool_backward": ("1", "1", "20"),
}
_P = "((n*inner+{0}*vec*1024-1)//({0}*vec*1024))"  # steps per pass of {0} groups of vec
#: the cooperative kernels (declared with a fixed block and a grid: one block per channel, a warp per
#: row, ...): the loop is one thread's share of its block's (or warp's) items, tree steps included
COOP_WORK: dict[str, tuple[str, str, str]] = {
    # batch norm, one block of 1024 threads per channel (norm.cu): each thread steps through its share
    # of the channel's n*inner values U groups of `vec` at a time (forward U = 4, backward 2), P =
    # ceil(n*inner / (U*vec*1024)) steps per pass, twice (statistics or gradient sums, then the
    # outputs), plus the fixed tree (shuffles at 5 offsets on two levels, 3-6 barriers: ~15 steps of
    # ~8 instructions). Per value and pass ~4 FLOPs (forward; backward ~4 then ~5) and ~5
    # instructions (6 backward), +12 per step; threads past the channel's groups (`busy` of 1024
    # have any) do no steps: averaged in
    "bn_forward": (f"2*{_P.format(4)}+15", f"2*{_P.format(4)}*16*vec*busy//1024//(2*{_P.format(4)}+15)",
                   f"(2*{_P.format(4)}*(20*vec+12)*busy//1024+15*8)//(2*{_P.format(4)}+15)"),
    "bn_backward": (f"2*{_P.format(2)}+15", f"2*{_P.format(2)}*9*vec*busy//1024//(2*{_P.format(2)}+15)",
                    f"(2*{_P.format(2)}*(12*vec+12)*busy//1024+15*8)//(2*{_P.format(2)}+15)"),
    "channel_sums": ("(n*inner+255)//256+8", "1", "4"),
    "softmax_xent_forward": ("3*((k+31)//32)+5", "8", "6"),
    "global_avgpool_forward": ("(inner+31)//32+5", "1", "4"),
    "relu_bias_grad": ("(n+31)//32+5", "2", "6"),
    "step_stats": ("(max(chunk, n)+255)//256+8", "2", "4"),
    # per position: the carried (b, oy, ox) step, the tap's bounds and address, two loads, one FMA
    "conv_wgrad_direct": ("(n*out_h*out_w+255)//256+8", "2", "24"),
}
def conv_dgrad_work(s: dict[str, int]) -> tuple[int, int, int, int]:
    """conv_dgrad's (multiply-adds executed, the longest K loop of a thread, shared bytes per block of
    float32, elements re-read from L2) from its scalars, as conv_dgrad.cu runs it: per stride phase
    (ry, rx), tiles of bm channels x 4096 / bm positions, each running the taps that reach the phase
    over o rounded up to steps of 8; two tiles in shared memory, 8 x 64 weights and 8 x 256 dy values.
    Every tile reads its taps' dy columns and weight rows: what exceeds dy and the weights once is
    read again from L2."""
    sh, sw, kh, kw, bm = s["sh"], s["sw"], s["kh"], s["kw"], s["bm"]
    bn, o8 = 4096 // bm, (s["o"] + 7) // 8 * 8
    tiles = -(-s["n"] * -(-s["h"] // sh) * -(-s["w"] // sw) // bn) * -(-s["c"] // bm)  # per phase

    def reach(r: int, k: int, pad: int, d: int, stride: int) -> int:
        return sum((r + pad - i * d) % stride == 0 for i in range(k))

    taps = [reach(ry, kh, s["ph"], s["dh"], sh) * reach(rx, kw, s["pw"], s["dw"], sw)
            for ry in range(sh) for rx in range(sw)]
    macs = sum(tiles * 4096 * t * o8 for t in taps)
    loads = sum(tiles * t * o8 * (bn + bm) for t in taps)
    once = s["o"] * s["n"] * s["out_h"] * s["out_w"] + s["o"] * s["c"] * kh * kw
    return macs, max(taps) * o8, 8 * (64 + 256) * 4, max(0, loads - once)


#: dualnet's shared-memory tiled products: name -> its work from the scalars (see conv_dgrad_work)
TILED: dict[str, Callable[[dict[str, int]], tuple[int, int, int, int]]] = {"conv_dgrad": conv_dgrad_work}
_DEFAULT_WORK = ("1", "2", "20")
#: elements a kernel reads again from L2, beyond its arrays read once (every block of
#: conv_wgrad_direct walks its output channel's dz and the matching input positions; the batch-norm
#: kernels' second pass reads x again, backward dy and the ReLU's y too, right after the first)
L2_REREAD: dict[str, str] = {
    "conv_wgrad_direct": "(c*kh*kw+1)*o*n*out_h*out_w*2",
    "bn_forward": "n*c*inner",
    "bn_backward": "write_dx*(2+act*(1-write_dz))*n*c*inner",
}
#: kernels whose code keeps several loads in flight per thread: (loads in flight, the condition of
#: its 16-byte vector path as an expression of the scalars; `v` = 16 // itemsize). norm.cu's
#: dn_bn_walk: at least 4 loads per step, all issued before any is used (forward 4 groups of one or two
#: arrays, backward 2 groups of two or three) (`vec` and `busy`, the threads with any
#: group, are set for COOP_WORK's expressions); float4 / double2 where inner and both
#: strides are multiples of the vector (and the arrays 16-byte aligned, as CuPy's allocations are:
#: ASSUMED for the views the kernels read)
VECTOR_LOADS: dict[str, tuple[int, str]] = {
    "bn_forward": (4, "inner % v == 0 and sn % v == 0 and sc % v == 0"),
    "bn_backward": (4, "inner % v == 0 and sn % v == 0 and sc % v == 0"),
}


def _eval(expr: str, scalars: dict[str, int]) -> int:
    return int(eval(expr, {"__builtins__": {}, "max": max, "min": min}, dict(scalars)))  # noqa: S307


def trace_step(model_name: str, batch: int) -> list[tuple[str, str, int, dict]]:
    """The operations of one steady-state fit step over the stand-in (kind, name, bytes, details)."""
    import gpu_host_overhead as host  # installs the stand-in cupy

    import dualnet as dn

    dev = host.gpu_device()
    model = dn.models.get(model_name, seed=0).to(dev)
    opt = dn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    train = host.dataset(3 * batch, tuple(model.input_shape))
    host.COUNTER.trace = trace = []
    try:
        dn.fit(model, train, epochs=1, batch_size=batch, optimizer=opt, progress_every=1000)
    finally:
        host.COUNTER.trace = None
    starts = [i for i, t in enumerate(trace) if t[1] == "dualnet:gather_batch"]
    if len(starts) < 3:
        raise SystemExit(f"gpu_kernel_report: expected 3 batch gathers in a 3-step fit, got {len(starts)}")
    return trace[starts[1]:starts[2]]


def _kernel_launch(name: str, detail: dict) -> Launch:
    from dualnet.kernels.signatures import KERNELS

    kernel = KERNELS[name]
    values = detail["args"]
    scalars = {p.name: int(v) for p, v in zip(kernel.params, values) if not p.is_pointer and p.base != "T"}
    nbytes = sum(v.nbytes * (2 if p.role == "inout" else 1) for p, v in zip(kernel.params, values) if p.is_pointer)
    grid, block = math.prod(detail["grid"]), math.prod(detail["block"])
    largest = max((v.size for p, v in zip(kernel.params, values) if p.is_pointer), default=0)
    scalars["w32"] = int(largest + grid * block <= 0xFFFFFFFF)
    fp64 = any(getattr(v, "dtype", None) == "float64" for v in values)
    itemsize = 8 if fp64 else 4
    if name in TILED:
        macs, serial, shared, reread = TILED[name](scalars)
        return Launch(name, grid, block, shared * itemsize // 4, nbytes, 2.0 * macs, serial,
                      math="fp64" if itemsize == 8 else "fp32", tiled=True, l2_bytes=reread * itemsize)
    ilp, word = 0, 0
    if name in VECTOR_LOADS:
        ilp, condition = VECTOR_LOADS[name]
        vector = _eval(condition, {**scalars, "v": 16 // itemsize})
        scalars["vec"] = 16 // itemsize if vector else 1
        word = scalars["vec"] * itemsize
        # loads in flight per thread, averaged over the block: threads with no group load nothing
        scalars["busy"] = min(block, -(-scalars["n"] * scalars["inner"] // scalars["vec"]))
        ilp = max(1, round(ilp * scalars["busy"] / block))
    if getattr(kernel, "cooperative", False):  # the loop is per thread already; work counts every thread's
        loop, flops, instr = (_eval(e, scalars) for e in COOP_WORK.get(name, _DEFAULT_WORK))
        items, serial = grid * block, loop
    else:
        items = kernel.launch_size(scalars)
        loop, flops, instr = (_eval(e, scalars) for e in WORK.get(name, _DEFAULT_WORK))
        serial = math.ceil(items / max(grid * block, 1)) * loop
    reread = _eval(L2_REREAD[name], scalars) * itemsize if name in L2_REREAD else 0
    return Launch(name, grid, block, detail["shared_mem"], nbytes, float(items * loop * flops), serial,
                  float(items * loop * instr), "fp64" if fp64 else "fp32", l2_bytes=reread, ilp=ilp, word=word)


def launches(trace: list[tuple[str, str, int, dict]]) -> list[Launch]:
    """The model's view of each traced operation (host syncs and copies to the host excluded)."""
    out = []
    for kind, name, nbytes, detail in trace:
        if kind == "kernel" and name.startswith("dualnet:"):
            out.append(_kernel_launch(name.split(":", 1)[1], detail))
        elif kind == "cublas":
            a, b, shape, dt = detail["a"], detail["b"], detail["out"], detail["dtype"]
            batch = math.prod(shape[:-2]) if len(shape) > 2 else 1
            out.append(gemm_launch(f"cublas {name}", a[-2] * batch, b[-1], a[-1], dt.itemsize, detail["compute"],
                                   nbytes))
        elif kind in ("kernel", "memset", "hidden_copy"):
            elems = math.prod(detail.get("shape", (1,)))
            label = {"kernel": "cupy", "memset": "memset", "hidden_copy": "hidden copy in"}[kind]
            out.append(Launch(f"{label} {name}", max(1, math.ceil(elems / 128)), 128, 0, nbytes, float(elems), 1))
    return out


def _fmt_bytes(n: float) -> str:
    return f"{n / 1e6:8.2f}"


def print_launches(gpu: Gpu, rows: list[Launch]) -> None:
    print(f"{'#':>4} {'kernel':<34} {'grid x block':>16} {'shared':>7} {'threads':>9} {'waves':>6} {'serial':>7} "
          f"{'MB':>8} {'MFLOP':>9} {'est us':>8}  bound")
    for i, r in enumerate(rows):
        print(f"{i:4d} {r.kernel[:34]:<34} {f'{r.grid} x {r.block}':>16} {r.shared:7d} {r.threads:9d} "
              f"{waves(gpu, r):6.2f} {r.serial:7d} {_fmt_bytes(r.nbytes)} {r.flops / 1e6:9.2f} {r.time_us:8.1f}  "
              f"{r.bound}")


def summarize(rows: list[Launch]) -> list[tuple[str, int, float, float, float]]:
    """(kernel, launches, MB, MFLOP, est us) per kernel name, most expensive first."""
    groups: dict[str, list[Launch]] = collections.defaultdict(list)
    for r in rows:
        groups[r.kernel].append(r)
    table = [(k, len(v), sum(r.nbytes for r in v) / 1e6, sum(r.flops for r in v) / 1e6, sum(r.time_us for r in v))
             for k, v in groups.items()]
    return sorted(table, key=lambda t: -t[4])


def print_summary(title: str, rows: list[Launch]) -> None:
    total = sum(r.time_us for r in rows)
    print(f"\n{title}: {len(rows)} launches, {total / 1e3:.3f} ms (estimate)")
    print(f"  {'kernel':<40} {'launches':>8} {'MB':>9} {'MFLOP':>10} {'est us':>9} {'share':>6}")
    for k, n, mb, mf, us in summarize(rows):
        print(f"  {k[:40]:<40} {n:8d} {mb:9.2f} {mf:10.1f} {us:9.1f} {us / total:6.1%}")


def report(model: str, batch: int, gpu: Gpu, per_launch: bool = True) -> dict[str, Any]:
    import dualnet as dn

    ours = [cost(gpu, r) for r in launches(trace_step(model, batch))]
    theirs = [cost(gpu, r) for r in torch_step_launches(dn.models.get(model, seed=0), batch)]
    print(f"dualnet {model}, batch {batch}: one fit step on the 'gpu' path, traced over the stand-in cupy")
    print(f"model GPU: {gpu.describe()}")
    print("ALL TIMES BELOW ARE ESTIMATES FROM THIS MODEL, NOT MEASUREMENTS\n")
    if per_launch:
        print_launches(gpu, ours)
    print_summary("dualnet step", ours)
    print_summary("PyTorch eager, ideal kernels (same model, FP32)", theirs)
    t_ours, t_theirs = sum(r.time_us for r in ours), sum(r.time_us for r in theirs)
    print(f"\nestimated GPU time per step: dualnet {t_ours / 1e3:.3f} ms ({len(ours)} launches), PyTorch eager "
          f"{t_theirs / 1e3:.3f} ms ({len(theirs)} launches): ratio {t_ours / t_theirs:.2f}x")
    return {"model": model, "batch": batch, "gpu": gpu.name, "estimate": True,
            "dualnet_ms": t_ours / 1e3, "dualnet_launches": len(ours), "torch_ms": t_theirs / 1e3,
            "torch_launches": len(theirs), "ratio": t_ours / t_theirs,
            "dualnet_by_kernel": [dict(zip(("kernel", "launches", "mb", "mflop", "us"), t)) for t in summarize(ours)],
            "torch_by_kernel": [dict(zip(("kernel", "launches", "mb", "mflop", "us"), t)) for t in summarize(theirs)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--gpu", choices=sorted(GPUS), default="h100-sxm", help="the GPU the model describes")
    ap.add_argument("--summary", action="store_true", help="per kernel name only, not per launch")
    ap.add_argument("--json", type=pathlib.Path, default=None)
    ap.add_argument("--measure", action="store_true",
                    help="on a machine with a GPU: add measured times (see gpu_kernel_measure.py)")
    args = ap.parse_args()
    if args.measure:
        from gpu_kernel_measure import measure_main
        measure_main(args.model, args.batch_size, GPUS[args.gpu], args.json)
        return
    out = report(args.model, args.batch_size, GPUS[args.gpu], per_launch=not args.summary)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
