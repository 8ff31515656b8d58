"""dualnet on "cpu" against PyTorch's CPU build: one training epoch of ResNet-8 on 3x32x32 images.

Both frameworks train the same network (dn.models.get("resnet8"): conv-BN-ReLU stem, three stages
of one residual block, global average pooling, linear) from the same initial weights (dualnet's
seeded initialisation copied into torch, parameter by parameter), on the same synthetic images
(10,000 seeded uniform 3x32x32 images with seeded labels over 10 classes) in the same batches
and order, with the same optimizer (SGD, momentum 0.9, lr 0.05, float32) and thread count. Each
run is a fresh child process; the frameworks alternate (dualnet, torch, dualnet, ...) and the
medians are compared, since only ratios between neighbouring runs mean anything on a shared machine.

Printed: epoch seconds (median, min), peak resident memory, the ratios dualnet/PyTorch, and both
epochs' mean training loss (equal initial weights and batches: they must agree closely).

Usage:
    pip install -e '.[bench]'            # PyTorch 2.13.0, CPU build (never needed by the library)
    python benchmarks/compare_resnet.py [--runs 3] [--threads 2] [--images 10000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from peer_runs import report, spawn, torch_sgd_epoch  # noqa: E402

BATCH = 64
LR = 0.05
MOMENTUM = 0.9
SEED = 0
MODEL = "resnet8"


def _data(images: int):
    """Seeded synthetic CIFAR-shaped data and dualnet's epoch order (identical in every child)."""
    import numpy as np

    import dualnet as dn

    gen = np.random.default_rng(SEED)
    x = gen.random((images, 3, 32, 32), dtype=np.float32)
    y = gen.integers(0, 10, images).astype(np.int64)
    return x, y, dn.data.epoch_order(images, SEED, 0)


def _initial_weights() -> dict:
    import dualnet as dn

    return {name: p.data.copy() for name, p in dn.models.get(MODEL).named_parameters()}


def run_dualnet(images: int, weights_file: str) -> dict:
    import numpy as np

    import dualnet as dn

    x, y, _ = _data(images)
    model = dn.models.get(MODEL)
    stored = np.load(weights_file)
    for name, p in model.named_parameters():
        p.data[...] = stored[name]
    opt = dn.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    t = time.perf_counter()
    history = dn.fit(model, dn.data.Dataset(x, y, name="synthetic"), None, epochs=1, batch_size=BATCH,
                     optimizer=opt, seed=SEED)
    return dict(epoch_s=time.perf_counter() - t, train_loss=history[0]["train_loss"])


def _torch_resnet8(torch):
    from torch import nn

    def block(cin, cout, stride):
        body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                             nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                    if stride != 1 or cin != cout else None)
        return Residual(body, shortcut)

    class Residual(nn.Module):
        def __init__(self, body, shortcut):
            super().__init__()
            self.body, self.shortcut = body, shortcut

        def forward(self, x):
            return self.body(x) + (x if self.shortcut is None else self.shortcut(x))

    return nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         block(16, 16, 1), nn.ReLU(), block(16, 32, 2), nn.ReLU(), block(32, 64, 2), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def run_torch(images: int, weights_file: str) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
    x, y, order = _data(images)
    net = _torch_resnet8(torch)
    stored = np.load(weights_file)
    params = list(net.parameters())
    # both frameworks list parameters in construction order: body before shortcut, weight before bias
    if len(params) != len(stored.files):
        raise SystemExit(f"compare_resnet: torch has {len(params)} parameters, dualnet {len(stored.files)}")
    with torch.no_grad():
        for p, name in zip(params, stored.files):
            if tuple(p.shape) != stored[name].shape:
                raise SystemExit(f"compare_resnet: {name} is {stored[name].shape} in dualnet, "
                                 f"{tuple(p.shape)} in torch")
            p.copy_(torch.from_numpy(stored[name]))
    epoch_s, train_loss = torch_sgd_epoch(torch, net, x, y, order, BATCH, LR, MOMENTUM)
    return dict(epoch_s=epoch_s, train_loss=train_loss)


def child(framework: str, images: int, weights_file: str) -> None:
    report((run_dualnet if framework == "dualnet" else run_torch)(images, weights_file))


def _spawn(framework: str, args, weights_file: str) -> dict:
    return spawn(__file__, framework, args.threads, ["--weights", weights_file, "--images", str(args.images)])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per framework (alternating)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS / torch threads for both")
    parser.add_argument("--images", type=int, default=10_000, help="synthetic training images")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the results here")
    parser.add_argument("--child", choices=("dualnet", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.images, args.weights)
        return
    if args.runs < 1 or args.threads < 1 or args.images < BATCH:
        parser.error(f"--runs and --threads must be >= 1 and --images >= {BATCH}")
    try:
        import torch
    except ImportError:
        sys.exit("compare_resnet: PyTorch is not installed; `pip install torch==2.13.0` (the CPU build) "
                 "or `pip install -e '.[bench]'`")
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        weights_file = str(pathlib.Path(tmp) / "resnet8_init.npz")
        np.savez(weights_file, **_initial_weights())
        results: dict[str, list[dict]] = {"dualnet": [], "torch": []}
        for run in range(args.runs):
            for framework in ("dualnet", "torch"):
                r = _spawn(framework, args, weights_file)
                results[framework].append(r)
                print(f"run {run + 1}/{args.runs} {framework:8s} epoch {r['epoch_s']:6.2f} s  "
                      f"peak {r['peak_rss_mb']:5.0f} MB  loss {r['train_loss']:.5f}", flush=True)

    def med(fw: str, key: str) -> float:
        return statistics.median(r[key] for r in results[fw])

    e = {fw: {"median": med(fw, "epoch_s"), "min": min(r["epoch_s"] for r in results[fw])} for fw in results}
    rss = {fw: max(r["peak_rss_mb"] for r in results[fw]) for fw in results}
    summary = {"model": MODEL, "images": args.images, "batch": BATCH, "runs": args.runs,
               "machine": f"{os.cpu_count()} cpus, {args.threads} threads", "torch": torch.__version__,
               "epoch_s": e, "peak_rss_mb": rss, "train_loss": {fw: med(fw, "train_loss") for fw in results},
               "epoch_ratio": e["dualnet"]["median"] / e["torch"]["median"]}
    print()
    print(f"{'':22s}{'dualnet':>12s}{'PyTorch ' + torch.__version__:>20s}{'ratio':>10s}")
    print(f"{'epoch s (median)':22s}{e['dualnet']['median']:12.2f}{e['torch']['median']:20.2f}"
          f"{summary['epoch_ratio']:10.2f}   (dualnet/PyTorch; <= 1.0 is parity or better)")
    print(f"{'epoch s (min)':22s}{e['dualnet']['min']:12.2f}{e['torch']['min']:20.2f}"
          f"{e['dualnet']['min'] / e['torch']['min']:10.2f}")
    print(f"{'peak RSS MB':22s}{rss['dualnet']:12.0f}{rss['torch']:20.0f}{rss['dualnet'] / rss['torch']:10.2f}")
    loss = summary["train_loss"]
    print(f"{'train loss (epoch)':22s}{loss['dualnet']:12.5f}{loss['torch']:20.5f}")
    if args.json_out:
        pathlib.Path(args.json_out).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
