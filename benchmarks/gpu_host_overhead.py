"""Host cost of dualnet's "gpu" path, measured without a GPU.

The complete "gpu" code path (backend, CupyOps, the real CupyLauncher and binding, `dn.fit`'s
loop) runs over `tests/standins/counting_cupy.py`, a stand-in `cupy` whose arrays carry shapes but no data and whose
kernels do nothing. What is left is the host's own work per step, which on a real GPU is what a
small model like LeNet-5 waits for. Printed, all from one run:

  - device operations (kernels, cuBLAS calls, memsets, copies) and host syncs per `fit` step,
    steady state (the difference between a fit of 2S and one of S steps, divided by S);
  - dualnet's own Python per kernel launch (launch time minus the bare kernel call);
  - host microseconds per LeNet-5 `fit` step (batch 64) beside PyTorch's CPU eager LeNet-5
    training step at batch 1 (one thread), measured in alternating rounds, medians: the closest
    CPU-measurable proxy of PyTorch CUDA eager's per-step dispatch cost. The ratio is what to read.

The stand-in's own bookkeeping (about a microsecond per operation) is inside dualnet's figure;
CuPy's own per-call host cost (typically 5-15 us per kernel) is not modelled: multiply the
operation count by it for an estimate on a real machine.

Also per step: hidden copies (copies CuPy makes inside `matmul` without being asked; 0 when every
product runs on 2-D or contiguous views) and the products by compute type (fp32, tf32, fp64).
`--model resnet20 --batch 128` counts any zoo model (3x32x32 inputs for the CIFAR ones); the
PyTorch comparison is LeNet-5's only.

    python benchmarks/gpu_host_overhead.py [--model lenet5] [--steps 100] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
from standins import counting_cupy  # noqa: E402

cp = counting_cupy.install()

import numpy as np  # noqa: E402

import dualnet as dn  # noqa: E402
from dualnet.backend import Device  # noqa: E402

COUNTER = counting_cupy.COUNTER


def gpu_device() -> Device:
    """The "gpu:0" device over the stand-in, built by the real backend. The GPU probe (which
    tries NVRTC, headers, cuBLAS on the real machine) is told the stand-in's one device is fine:
    the stand-in has no toolkit to probe, and what is measured here is dualnet's own host cost."""
    from dualnet import gpu_probe

    gpu_probe.cached_probe = lambda index: gpu_probe.ProbeResult(index < 1, 1)
    return dn.use_device("gpu")


def dataset(n: int, shape: tuple[int, ...] = (1, 28, 28)) -> dn.data.Dataset:
    rng = np.random.default_rng(0)
    return dn.data.Dataset(rng.random((n, *shape), dtype=np.float32), rng.integers(0, 10, n))


def run_fit(dev: Device, steps: int, batch: int, progress_every: int, model_name: str = "lenet5") \
        -> tuple[float, collections.Counter, collections.Counter]:
    """One fit of `steps` steps: (seconds, ops, syncs)."""
    model = dn.models.get(model_name, seed=0).to(dev)
    opt = dn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    train = dataset(steps * batch, tuple(model.input_shape))
    COUNTER.reset()
    t = time.perf_counter()
    dn.fit(model, train, epochs=1, batch_size=batch, optimizer=opt, progress_every=progress_every)
    seconds = time.perf_counter() - t
    ops, syncs = COUNTER.snapshot()
    return seconds, ops, syncs


def launch_overhead(dev: Device, repeats: int = 2000) -> dict:
    """us per launch through the real launcher (stand-in arrays, no-op kernel) and the bare call."""
    launcher = dev.ops.launcher
    x = cp.empty((64, 6, 14, 14), np.float32)
    cols = cp.empty((6, 5, 5, 64, 10, 10), np.float32)
    dy = cp.empty(64 * 120, np.float32)
    y = cp.empty(64 * 120, np.float32)
    dx = cp.empty(64 * 120, np.float32)
    cases = {
        "im2col (16 arguments)": ("im2col", (x, cols, 64, 6, 14, 14, 5, 5, 1, 1, 0, 0, 1, 1, 10, 10)),
        "relu_backward (4 arguments)": ("relu_backward", (dy, y, dx, dy.size)),
    }
    out = {}
    for label, (name, args) in cases.items():
        launcher.launch(name, np.float32, *args)  # compile (a no-op here) and warm caches
        bare = launcher.kernel_function(name, np.float32) if hasattr(launcher, "kernel_function") \
            else cp.RawModule().get_function(name)
        fargs = tuple(args)
        per, floor = [], []
        for _ in range(7):
            t = time.perf_counter()
            for _ in range(repeats):
                launcher.launch(name, np.float32, *args)
            per.append((time.perf_counter() - t) / repeats * 1e6)
            t = time.perf_counter()
            for _ in range(repeats):
                bare((1,), (256,), fargs)
            floor.append((time.perf_counter() - t) / repeats * 1e6)
        total, base = statistics.median(per), statistics.median(floor)
        out[label] = {"us_per_launch": total, "bare_kernel_call_us": base, "dualnet_own_us": total - base}
    return out


def torch_step():
    try:
        import torch
    except ImportError:
        return None, "torch not installed (pip install '.[bench]')"
    torch.set_num_threads(1)
    torch.manual_seed(0)
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                        nn.Linear(84, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(1, 1, 28, 28)
    y = torch.randint(0, 10, (1,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()
    return step, f"torch {torch.__version__} CPU eager, batch 1, 1 thread"


def per_step(big: collections.Counter, small: collections.Counter, steps: int) -> float:
    return (sum(big.values()) - sum(small.values())) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lenet5", help="a zoo model (dn.models.get); default lenet5")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--progress-every", type=int, default=20)
    ap.add_argument("--json", type=pathlib.Path, default=None)
    ap.add_argument("--no-peer", action="store_true", help="skip PyTorch (the operation-count test)")
    args = ap.parse_args()
    dev = gpu_device()
    s = args.steps
    m = args.model
    run_fit(dev, 4, args.batch, args.progress_every, m)  # warm-up: compiles (no-ops), imports, caches
    _, ops1, syncs1 = run_fit(dev, s, args.batch, args.progress_every, m)
    _, ops2, syncs2 = run_fit(dev, 2 * s, args.batch, args.progress_every, m)
    ops_step = per_step(ops2, ops1, s)
    by_kind: collections.Counter = collections.Counter()
    for (kind, name), k in ops2.items():
        by_kind[kind] += k - ops1.get((kind, name), 0)
    kinds = {k: v / s for k, v in sorted(by_kind.items())}
    names = {f"{k}:{n}": (v - ops1.get((k, n), 0)) / s for (k, n), v in sorted(ops2.items())
             if v - ops1.get((k, n), 0)}
    other1 = collections.Counter({k: v for k, v in syncs1.items() if not k[0].endswith("[progress]")})
    syncs_step = per_step(syncs2, syncs1, s)
    other_fit = sum(other1.values())  # everything in a fit of S steps that is not progress printing
    syncs_outside = other_fit / s
    launch = launch_overhead(dev)
    own = max(v["dualnet_own_us"] for v in launch.values())

    hidden = sum(v for k, v in names.items() if k.startswith("hidden_copy:"))
    products = {k.split(":", 1)[1]: v for k, v in names.items() if k.startswith("cublas:")}
    if args.no_peer:
        peer, peer_name = None, "skipped (--no-peer)"
    elif m != "lenet5":
        peer, peer_name = None, f"skipped (the PyTorch proxy is LeNet-5's; model {m})"
    else:
        peer, peer_name = torch_step()
    ours, theirs = [], []
    for _ in range(args.rounds):
        t, _, _ = run_fit(dev, s, args.batch, args.progress_every, m)
        ours.append(t / s * 1e6)
        if peer is not None:
            for _ in range(10):
                peer()
            t0 = time.perf_counter()
            for _ in range(s):
                peer()
            theirs.append((time.perf_counter() - t0) / s * 1e6)
    host_us = statistics.median(ours)
    report = {
        "model": m, "steps": s, "batch": args.batch, "hidden_copies_per_step": hidden, "products_per_step": products,
        "progress_every": args.progress_every,
        "device_ops_per_step": ops_step, "ops_per_step_by_kind": kinds, "ops_per_step_by_name": names,
        "syncs_per_step": syncs_step, "syncs_outside_progress_per_fit": other_fit,
        "syncs_outside_progress_per_step": syncs_outside,
        "syncs_outside_progress": {f"{w} ({what})": k for (w, what), k in other1.items()},
        "launch": launch, "launch_own_us_max": own, "host_us_per_step": host_us, "peer": peer_name,
    }
    print(f"{m} dn.fit on 'gpu' over the stand-in cupy, batch {args.batch}, steady state over {s} steps")
    print(f"  device operations per step  {ops_step:7.2f}   ("
          + ", ".join(f"{k} {v:.2f}" for k, v in kinds.items()) + ")")
    print(f"  hidden copies per step      {hidden:7.2f}   (products: "
          + ", ".join(f"{k} {v:.2f}" for k, v in products.items()) + ")")
    print(f"  host syncs per step         {syncs_step:7.3f}   (outside progress printing: {other_fit} in a fit "
          f"of {s} steps = 1 per {s / max(other_fit, 1e-9):.0f} steps)")
    for label, v in launch.items():
        print(f"  launch {label:<27} {v['us_per_launch']:6.2f} us, bare kernel call {v['bare_kernel_call_us']:5.2f} us,"
              f" dualnet's own {v['dualnet_own_us']:5.2f} us")
    if peer is not None:
        peer_us = statistics.median(theirs)
        report.update(peer_us_per_step=peer_us, ratio_dualnet_over_peer=host_us / peer_us)
        print(f"  host time per step          {host_us:7.1f} us; {peer_name} {peer_us:.1f} us; "
              f"dualnet / torch = {host_us / peer_us:.2f}x")
    else:
        print(f"  host time per step          {host_us:7.1f} us; peer: {peer_name}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
