"""GPU benchmark of LeNet-5 training: dualnet's CuPy path beside PyTorch CUDA, in one run.

Reports, for batch 64 and 256: ms per training step (median), seconds per MNIST epoch (50,000
images), kernel launches per step (dualnet's own kernels, counted at the launcher), per-kernel
times (cupyx.profiler.benchmark), and PyTorch CUDA's ms per step measured in the same run when
torch with CUDA is present (the ratio is what to read). Results go to benchmarks/results/.

    python benchmarks/gpu_bench.py                   # on a CUDA machine
    python benchmarks/gpu_bench.py --device emu --quick   # smoke test of the script on the CPU
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import pathlib
import platform
import statistics
import time

import numpy as np

import dualnet as dn

RESULTS = pathlib.Path(__file__).parent / "results"


def sync(dev) -> None:
    if dev.kind == "gpu":
        dev.xp.cuda.Device(dev.index).synchronize()


def timed(fn, dev, repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    sync(dev)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync(dev)
        out.append((time.perf_counter() - t) * 1e3)
    return out


class CountingLauncher:
    """Wraps the device's launcher to count launches per kernel."""

    def __init__(self, inner):
        self.inner, self.counts = inner, collections.Counter()

    def launch(self, name, dtype, *args):
        self.counts[name] += 1
        return self.inner.launch(name, dtype, *args)


def dualnet_step(dev, batch: int):
    model = dn.models.lenet5(seed=0)
    opt = dn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    crit = dn.losses.SoftmaxCrossEntropy(device=dev)
    rng = np.random.default_rng(0)
    x = dn.to_device(rng.random((batch, 1, 28, 28), dtype=np.float32), dev)
    y = dn.to_device(rng.integers(0, 10, batch).astype(np.int32), dev)

    def step():
        model.zero_grad()
        crit.forward(model(x), y, sync=False)
        model.backward(crit.backward())
        opt.step()
    return step


def torch_step(batch: int):
    try:
        import torch
    except ImportError:
        return None, "torch not installed"
    if not torch.cuda.is_available():
        return None, "torch has no CUDA device"
    torch.backends.cudnn.benchmark = True
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                        nn.Linear(84, 10)).cuda()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(batch, 1, 28, 28, device="cuda")
    y = torch.randint(0, 10, (batch,), device="cuda")
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()
        torch.cuda.synchronize()
    return step, f"torch {torch.__version__}"


def kernel_times(dev, batch: int, repeats: int) -> dict:
    """Per-kernel GPU time of the ops one step launches (cupyx.profiler.benchmark)."""
    if dev.kind != "gpu":
        return {}
    from cupyx.profiler import benchmark

    ops, xp = dev.ops, dev.xp
    x1 = xp.random.random((batch, 6, 28, 28), dtype=xp.float32)
    x2 = xp.random.random((batch, 6, 14, 14), dtype=xp.float32)
    g_pool = (2, 2, 2, 2, 0, 0, 1, 1, 14, 14)
    g_conv = (5, 5, 1, 1, 0, 0, 1, 1, 10, 10)
    y, arg = ops.maxpool_forward(x1, g_pool)
    cols = ops.im2col(x2, g_conv)
    logits = xp.random.random((batch, 10), dtype=xp.float32)
    labels = xp.zeros(batch, dtype=xp.int32)
    cases = {
        "im2col conv2": lambda: ops.im2col(x2, g_conv),
        "col2im conv2": lambda: ops.col2im(cols, x2.shape, g_conv),
        "maxpool_forward pool1": lambda: ops.maxpool_forward(x1, g_pool),
        "maxpool_backward pool1": lambda: ops.maxpool_backward(y, arg, x1.shape, g_pool),
        "bias_act conv1": lambda: ops.bias_act(x1.reshape(6, batch, 784), xp.zeros(6, xp.float32), "relu", True),
        "softmax_xent_forward": lambda: ops.softmax_xent_forward(logits, labels),
    }
    out = {}
    for name, fn in cases.items():
        r = benchmark(fn, n_repeat=repeats, n_warmup=5)
        out[name] = float(np.median(r.gpu_times) * 1e3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="gpu")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--quick", action="store_true", help="few repeats, batch 64 only (smoke test)")
    ap.add_argument("--out", type=pathlib.Path, default=None)
    args = ap.parse_args()
    dev = dn.use_device(args.device)
    repeats = 3 if args.quick else args.repeats
    report = {"device": dev.name, "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "python": platform.python_version(), "numpy": np.__version__, "batches": {}}
    if dev.kind == "gpu":
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(dev.index)
        report["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        report["cupy"] = cupy.__version__
    counter = CountingLauncher(dev.ops.launcher)
    dev.ops.launcher = counter
    try:
        for batch in ((64,) if args.quick else (64, 256)):
            step = dualnet_step(dev, batch)
            counter.counts.clear()
            step()
            launches = dict(counter.counts)
            ms = statistics.median(timed(step, dev, repeats))
            row = {"dualnet_ms_per_step": ms, "dualnet_s_per_epoch": ms * 50000 / batch / 1e3,
                   "kernel_launches_per_step": sum(launches.values()), "launches": launches,
                   "kernel_ms": kernel_times(dev, batch, repeats)}
            peer, peer_name = torch_step(batch)
            if peer is not None:
                theirs = statistics.median(timed(peer, dev, repeats))
                row.update(peer=peer_name, peer_ms_per_step=theirs, ratio_dualnet_over_peer=ms / theirs)
            else:
                row["peer"] = f"none ({peer_name})"
            report["batches"][str(batch)] = row
            line = (f"batch {batch:>4}: dualnet {ms:8.3f} ms/step ({row['dualnet_s_per_epoch']:.2f} s/epoch), "
                    f"{row['kernel_launches_per_step']} kernel launches/step")
            if peer is not None:
                line += f"; {peer_name} {theirs:.3f} ms/step; dualnet/torch = {ms / theirs:.2f}x"
            print(line)
            for k, v in row["kernel_ms"].items():
                print(f"    {k:<24} {v:8.4f} ms")
    finally:
        dev.ops.launcher = counter.inner
    out = args.out or RESULTS / f"gpu_bench_{dev.name.replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
