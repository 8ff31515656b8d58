"""What the PyTorch comparisons share: one child process per run with the thread count fixed
before any BLAS pool starts, its result read back as JSON, the machine each result belongs to
(CPU model, load average, each framework's BLAS and kernel as threadpoolctl reports them), and
PyTorch's side of an SGD epoch.

compare_torch.py (LeNet-5 on MNIST) and compare_resnet.py (ResNet-8 on 3x32x32) import it; the
runs of the two frameworks alternate in the parent, so both see the same machine.
"""

from __future__ import annotations

import json
import os
import pathlib
import resource
import subprocess
import sys
import time
from typing import Any


def report(result: dict) -> None:
    """A child's last line: its result with its peak resident memory and the thread pools it ran
    with (threadpoolctl), as JSON for the parent."""
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["blas"] = blas_pools()
    print(json.dumps(result))


def blas_pools() -> list[dict]:
    """The BLAS / OpenMP pools loaded in this process: library, version, kernel (architecture),
    threads. Asked after the run, so they are the pools the measured work used."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl not installed (pip install threadpoolctl)"}]
    keys = ("user_api", "internal_api", "version", "architecture", "threading_layer", "num_threads")
    pools = [{k: pool[k] for k in keys if pool.get(k) is not None} for pool in threadpool_info()]
    workers = sys.modules.get("dualnet.ops.cpu_workers")
    if workers is not None:  # the CPU table's own threads, which took the BLAS's (the BLAS then shows 1)
        pools.append({"user_api": "dualnet cpu blocks", "num_threads": workers.threads()})
    torch = sys.modules.get("torch")
    if torch is not None:  # its oneDNN / MKL are linked into libtorch: threadpoolctl does not list them
        pools.append({"user_api": "torch", "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                      "mkldnn": torch.backends.mkldnn.is_available(), "mkl": torch.backends.mkl.is_available(),
                      "num_threads": torch.get_num_threads()})
    return pools


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo; lscpu's "Model name"), with the CPU count."""
    name = "unknown CPU"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical CPUs"


def load_average() -> str:
    """The 1/5/15-minute load averages: how busy the machine was around the measurement."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine_header(threads: int | str) -> dict:
    """What the parent prints before the runs: CPU, load average, threads, each side's version."""
    info = {"cpu": cpu_model(), "load_average_start": load_average(), "threads": threads}
    print(f"machine: {info['cpu']}; load average {info['load_average_start']}; {threads} threads per framework",
          flush=True)
    return info


def describe_pools(results: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Print each framework's BLAS pools (from its first run) and return them for the JSON."""
    pools = {fw: runs[0].get("blas", []) for fw, runs in results.items() if runs}
    for fw, fw_pools in pools.items():
        for pool in fw_pools:
            text = ", ".join(f"{k} {v}" for k, v in pool.items())
            print(f"{fw} thread pool: {text}")
    return pools


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


def torch_resnet(nn, blocks: int):
    """dn.models' resnet8 (blocks=1) or resnet20 (blocks=3) in torch.nn (`nn` is torch.nn: torch is
    imported by the caller, only where it is installed)."""

    class Residual(nn.Module):
        def __init__(self, body, shortcut):
            super().__init__()
            self.body, self.shortcut = body, shortcut

        def forward(self, x):
            return self.body(x) + (x if self.shortcut is None else self.shortcut(x))

    def block(cin, cout, stride):
        body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                             nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                    if stride != 1 or cin != cout else None)
        return Residual(body, shortcut)

    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for stage, cout in enumerate((16, 32, 64)):
        for i in range(blocks):
            layers += [block(cin, cout, 2 if stage > 0 and i == 0 else 1), nn.ReLU()]
            cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
