"""What the PyTorch comparisons share: one child process per run with the thread count fixed
before any BLAS pool starts, its result read back as JSON, and PyTorch's side of an SGD epoch.

compare_torch.py (LeNet-5 on MNIST) and compare_resnet.py (ResNet-8 on 3x32x32) import it; the
runs of the two frameworks alternate in the parent, so both see the same machine.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from typing import Any


def report(result: dict) -> None:
    """A child's last line: its result with its peak resident memory, as JSON for the parent."""
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def spawn(script: str, framework: str, threads: int, extra: list[str]) -> dict:
    """Run `script --child framework extra...` with `threads` BLAS/torch threads; its JSON result."""
    env = dict(os.environ, BENCH_THREADS=str(threads))
    # the thread count must be fixed before NumPy's BLAS (or torch) starts its pool
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    proc = subprocess.run([sys.executable, script, "--child", framework, *extra], env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        name = os.path.splitext(os.path.basename(script))[0]
        sys.exit(f"{name}: the {framework} run failed:\n{proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def torch_sgd_epoch(torch: Any, net: Any, images: Any, labels: Any, order: Any, batch: int, lr: float,
                    momentum: float) -> tuple[float, float]:
    """One epoch of `net` in PyTorch over `order` in batches: (seconds, mean training loss).

    images: (N, C, H, W) float32, labels: (N,) int64 NumPy arrays; SGD with momentum and
    cross-entropy, as the dualnet side trains (`dn.fit` reports the epoch's mean loss too)."""
    import numpy as np

    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    loss_fn = torch.nn.CrossEntropyLoss()
    xs, ys = torch.from_numpy(images), torch.from_numpy(labels)
    idx_all = torch.from_numpy(np.asarray(order, dtype=np.int64))
    net.train()
    started = time.perf_counter()
    loss_sum = 0.0
    for start in range(0, len(idx_all), batch):
        idx = idx_all[start:start + batch]
        opt.zero_grad()
        loss = loss_fn(net(xs[idx]), ys[idx])
        loss.backward()
        opt.step()
        loss_sum += loss.item() * len(idx)
    return time.perf_counter() - started, loss_sum / len(idx_all)
