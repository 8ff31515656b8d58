"""Forward + backward of LeNet-5 at batch 64 on MNIST-shaped data: ms per step.

Never a bare time: each figure is printed beside a peer measured in the same run,
  - "gemm floor": the same step's matrix products alone (NumPy matmul on the same shapes), so
    the ratio says how much time goes to everything around the GEMMs;
  - PyTorch's CPU build on the same architecture and batch, when torch is installed, with as many
    threads as dualnet's "cpu" device has (OPENBLAS_NUM_THREADS sets both).
Usage: python benchmarks/step_time.py [--device cpu|emu|gpu] [--batch 64] [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import dualnet as dn
from dualnet.ops import cpu_workers


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def gemm_floor(batch: int):
    """The matmuls of one LeNet-5 training step (forward, dW and dX of every conv and linear)."""
    rng = np.random.default_rng(0)
    shapes = [((6, 25), (25, batch * 784)), ((16, 150), (150, batch * 100)),
              ((batch, 400), (400, 120)), ((batch, 120), (120, 84)), ((batch, 84), (84, 10))]
    mats = [(rng.random(a, dtype=np.float32), rng.random(b, dtype=np.float32)) for a, b in shapes]

    def run():
        for a, b in mats:  # forward, weight gradient, input gradient: three products each
            y = a @ b
            a.T @ y
            y @ b.T
    return run


def torch_step(batch: int, threads: int):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)  # as many as dualnet's "cpu" device has (its default: every core)
    torch.manual_seed(0)
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                        nn.Linear(84, 10))
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    loss_fn = nn.CrossEntropyLoss()

    def run():
        net.zero_grad()
        loss_fn(net(x), y).backward()
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    dev = dn.use_device(args.device)
    model = dn.models.lenet5()
    crit = dn.losses.SoftmaxCrossEntropy()
    rng = np.random.default_rng(0)
    x = dn.to_device(rng.random((args.batch, 1, 28, 28), dtype=np.float32), dev)
    labels = dn.to_device(rng.integers(0, 10, args.batch).astype(np.int32), dev)

    def step():
        model.zero_grad()
        crit.forward(model(x), labels, sync=False)
        model.backward(crit.backward())
        if dev.kind == "gpu":
            dev.xp.cuda.Device().synchronize()

    ours = median_ms(step, args.repeats)
    floor = median_ms(gemm_floor(args.batch), args.repeats)
    threads = cpu_workers.threads() if dev.kind == "cpu" else 1
    print(f"lenet5 forward+backward, batch {args.batch}, device {dev.name}, median of {args.repeats}, "
          f"{threads} thread(s) each")
    print(f"  dualnet            {ours:8.2f} ms/step")
    print(f"  gemm floor (numpy) {floor:8.2f} ms/step   dualnet / gemm floor = {ours / floor:.2f}x")
    peer = torch_step(args.batch, threads)
    if peer is not None:
        import torch
        theirs = median_ms(peer, args.repeats)
        print(f"  pytorch {torch.__version__:<10} {theirs:8.2f} ms/step   dualnet / pytorch = {ours / theirs:.2f}x")
    else:
        print("  pytorch            not installed (pip install '.[bench]' to compare)")


if __name__ == "__main__":
    main()
