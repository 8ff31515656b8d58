"""GPU benchmark of LeNet-5 training: dualnet's `dn.fit` on "gpu" beside PyTorch CUDA eager, one run.

The same work on both sides: batch B drawn from a dataset already on the device, forward, loss,
backward without the input gradient of the first layer (PyTorch computes none for an input that
does not require it), SGD with momentum 0.9. Reported, as ratios dualnet / PyTorch from
alternating rounds (medians):

  - ms per step, from `dn.fit` over `--steps` steps (the fit loop's own data movement included)
    and from PyTorch's loop indexing its device-resident dataset the same way;
  - seconds per epoch, each side's real epoch over 50,000 MNIST-sized images;
  - device operations per step (kernels, memcpys, memsets) counted by CUPTI through
    torch.profiler, for both sides (CUPTI sees every kernel of the process, CuPy's included);
  - memory: CuPy's pool (used / held bytes) after the epoch, PyTorch's peak allocated bytes.

Results go to benchmarks/results/gpu_bench_<device>.json (or --out).

    python benchmarks/gpu_bench.py                        # on a CUDA machine with torch
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
from typing import Any

import numpy as np

import dualnet as dn

RESULTS = pathlib.Path(__file__).parent / "results"


def sync(dev: Any) -> None:
    if dev.kind == "gpu":
        dev.xp.cuda.Device(dev.index).synchronize()


def dataset(n: int, seed: int = 0) -> dn.data.Dataset:
    rng = np.random.default_rng(seed)
    return dn.data.Dataset(rng.random((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n))


class DualnetRun:
    """`dn.fit` of LeNet-5 over a dataset of `steps * batch` images: one epoch = `steps` steps."""

    def __init__(self, dev: Any, batch: int, steps: int) -> None:
        self.dev, self.batch, self.steps = dev, batch, steps
        self.train = dataset(steps * batch)
        self.model = dn.models.lenet5(seed=0).to(dev)
        self.opt = dn.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)

    def __call__(self) -> float:
        """Seconds for one fit epoch (synchronized)."""
        sync(self.dev)
        t = time.perf_counter()
        dn.fit(self.model, self.train, epochs=1, batch_size=self.batch, optimizer=self.opt,
               progress_every=self.steps)
        sync(self.dev)
        return time.perf_counter() - t


class TorchRun:
    """PyTorch CUDA eager: the same epoch loop over a device-resident dataset."""

    def __init__(self, batch: int, steps: int) -> None:
        import torch

        nn = torch.nn
        torch.backends.cudnn.benchmark = True
        torch.manual_seed(0)
        self.torch, self.batch, self.steps = torch, batch, steps
        self.net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                                 nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                                 nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)).cuda()
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01, momentum=0.9)
        self.loss_fn = nn.CrossEntropyLoss()
        n = steps * batch
        self.x = torch.rand(n, 1, 28, 28, device="cuda")
        self.y = torch.randint(0, 10, (n,), device="cuda", dtype=torch.int64)

    def __call__(self) -> float:
        torch = self.torch
        torch.cuda.synchronize()
        t = time.perf_counter()
        order = torch.randperm(self.x.shape[0], device="cuda")
        loss_sum = torch.zeros((), device="cuda")
        for s in range(self.steps):
            idx = order[s * self.batch:(s + 1) * self.batch]
            self.opt.zero_grad()
            loss = self.loss_fn(self.net(self.x[idx]), self.y[idx])
            loss.backward()
            self.opt.step()
            loss_sum += loss.detach()
        float(loss_sum)  # the one read of the epoch, as dn.fit's
        torch.cuda.synchronize()
        return time.perf_counter() - t


def torch_cuda() -> tuple[bool, str]:
    try:
        import torch
    except ImportError:
        return False, "torch not installed"
    if not torch.cuda.is_available():
        return False, "torch has no CUDA device"
    return True, f"torch {torch.__version__} (CUDA {torch.version.cuda})"


def device_ops(run: Any) -> dict | None:
    """CUDA activity of one run() counted by CUPTI (torch.profiler): {kind: count} and by name."""
    try:
        from torch.profiler import ProfilerActivity, profile
    except ImportError:
        return None
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        run()
    kinds: collections.Counter = collections.Counter()
    names: collections.Counter = collections.Counter()
    for e in prof.events():
        if str(getattr(e, "device_type", "")).endswith("CUDA"):
            name = e.name
            kind = "memcpy" if "memcpy" in name.lower() else "memset" if "memset" in name.lower() else "kernel"
            kinds[kind] += 1
            names[name[:80]] += 1
    return {"kinds": dict(kinds), "top": dict(names.most_common(12))}


def alternate(ours: Any, theirs: Any, rounds: int) -> tuple[list[float], list[float]]:
    a, b = [], []
    for _ in range(rounds):
        a.append(ours())
        if theirs is not None:
            b.append(theirs())
    return a, b


def memory(dev: Any) -> dict:
    out: dict = {}
    if dev.kind == "gpu":
        pool = dev.xp.get_default_memory_pool()
        out.update(cupy_pool_used_bytes=int(pool.used_bytes()), cupy_pool_held_bytes=int(pool.total_bytes()))
    try:
        import torch

        if torch.cuda.is_available():
            out["torch_max_allocated_bytes"] = int(torch.cuda.max_memory_allocated())
    except ImportError:
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="gpu")
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--steps", type=int, default=200, help="steps per timed fit")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epoch-images", type=int, default=50000)
    ap.add_argument("--quick", action="store_true", help="batch 64, few steps, a small epoch (smoke test)")
    ap.add_argument("--out", type=pathlib.Path, default=None)
    args = ap.parse_args()
    if args.quick:
        args.batch, args.steps, args.rounds, args.epoch_images = [64], 4, 1, 256
    dev = dn.use_device(args.device)
    peer_ok, peer_name = torch_cuda() if dev.kind == "gpu" else (False, f"none on device {dev.name}")
    report: dict = {"device": dev.name, "peer": peer_name,
                    "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "python": platform.python_version(), "numpy": np.__version__, "batches": {}}
    if dev.kind == "gpu":
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(dev.index)
        report["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        report["cupy"] = cupy.__version__
    for batch in args.batch:
        ours = DualnetRun(dev, batch, args.steps)
        theirs = TorchRun(batch, args.steps) if peer_ok else None
        ours()
        if theirs is not None:
            theirs()  # warm-up: compiles, cuDNN autotuning, pools
        a, b = alternate(ours, theirs, args.rounds)
        row: dict = {"steps_per_fit": args.steps, "dualnet_ms_per_step": statistics.median(a) / args.steps * 1e3}
        epoch_steps = -(-args.epoch_images // batch)
        ours_e = DualnetRun(dev, batch, epoch_steps)
        theirs_e = TorchRun(batch, epoch_steps) if peer_ok else None
        ea, eb = alternate(ours_e, theirs_e, 1 if args.quick else 2)
        row["dualnet_s_per_epoch"] = min(ea)
        line = f"batch {batch:>4}: dualnet {row['dualnet_ms_per_step']:.3f} ms/step, {min(ea):.2f} s/epoch"
        if theirs is not None and theirs_e is not None:
            row.update(peer_ms_per_step=statistics.median(b) / args.steps * 1e3, peer_s_per_epoch=min(eb))
            row["ratio_step"] = row["dualnet_ms_per_step"] / row["peer_ms_per_step"]
            row["ratio_epoch"] = row["dualnet_s_per_epoch"] / row["peer_s_per_epoch"]
            line += (f"; torch {row['peer_ms_per_step']:.3f} ms/step, {min(eb):.2f} s/epoch; dualnet / torch = "
                     f"{row['ratio_step']:.2f}x per step, {row['ratio_epoch']:.2f}x per epoch")
            ops_ours, ops_theirs = device_ops(ours), device_ops(theirs)
            if ops_ours and ops_theirs:
                row["device_ops_per_step"] = {k: v / args.steps for k, v in ops_ours["kinds"].items()}
                row["peer_device_ops_per_step"] = {k: v / args.steps for k, v in ops_theirs["kinds"].items()}
                row["dualnet_top_device_ops"], row["peer_top_device_ops"] = ops_ours["top"], ops_theirs["top"]
                mine, peer = sum(row["device_ops_per_step"].values()), sum(row["peer_device_ops_per_step"].values())
                line += f"\n            device ops/step (CUPTI): dualnet {mine:.1f}, torch {peer:.1f}"
        else:
            line += f"; peer: {peer_name}"
        row["memory"] = memory(dev)
        report["batches"][str(batch)] = row
        print(line, flush=True)
    out = args.out or RESULTS / f"gpu_bench_{dev.name.replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
