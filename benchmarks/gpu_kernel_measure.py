"""Measured mode of gpu_kernel_report.py: needs a real GPU (cupy importable, a device). UNRUN so far:
no GPU was lent to the sessions that wrote it.

    python benchmarks/gpu_kernel_report.py --model resnet20 --batch-size 128 --measure [--json out.json]

1. The estimates: the report's own model, computed in a child process over the stand-in cupy.
2. Per kernel name, measured: every dualnet kernel launch and every product of a `dn.fit` of
   `STEPS` steps is bracketed by CUDA events (cupy.cuda.Event); the sum per name per step, median
   over `REPEATS` fits; beside it the estimate and the achieved fraction of the bandwidth and FLOP
   peaks (the model's bytes and FLOPs over the measured time). CuPy's own glue kernels (adds,
   copies) are not bracketed: they are the step's remainder.
3. The whole step without brackets (events around a fit, divided by its steps), and PyTorch eager
   on the same GPU (the same layers as torch.nn modules, SGD with momentum, CUDA events, median).
"""

from __future__ import annotations

import json
import pathlib
import statistics
import subprocess
import sys
from typing import Any

import numpy as np

STEPS, REPEATS = 10, 5
HERE = pathlib.Path(__file__).resolve().parent


def _estimates(model: str, batch: int, gpu_key: str) -> dict:
    out = HERE / "results" / f"estimate_{model}_{batch}.json"
    out.parent.mkdir(exist_ok=True)
    subprocess.run([sys.executable, str(HERE / "gpu_kernel_report.py"), "--model", model, "--batch-size", str(batch),
                    "--gpu", gpu_key, "--summary", "--json", str(out)], check=True, capture_output=True)
    return json.loads(out.read_text())


def _dualnet_fit(dn: Any, model_name: str, batch: int, steps: int) -> Any:
    model = dn.models.get(model_name, seed=0).to("gpu")
    rng = np.random.default_rng(0)
    shape = tuple(model.input_shape)
    train = dn.data.Dataset(rng.random((steps * batch, *shape), dtype=np.float32), rng.integers(0, 10, steps * batch))
    opt = dn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return lambda: dn.fit(model, train, epochs=1, batch_size=batch, optimizer=opt, progress_every=10**6)


def measure_kernels(dn: Any, cp: Any, model_name: str, batch: int) -> dict[str, float]:
    """Median over REPEATS fits of the per-step milliseconds of each kernel name (events per launch)."""
    from dualnet.kernels.launch import CupyLauncher
    from dualnet.ops.products import ProductOps

    records: list[tuple[str, Any, Any]] = []
    launch, mm, mm_add = CupyLauncher.launch, ProductOps._mm, ProductOps._mm_add

    def bracket(name: str, call: Any) -> Any:
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        out = call()
        end.record()
        records.append((name, start, end))
        return out

    CupyLauncher.launch = lambda self, name, dtype, *args: bracket(name, lambda: launch(self, name, dtype, *args))
    ProductOps._mm = lambda self, a, b, out=None: bracket("cublas matmul", lambda: mm(self, a, b, out))
    # the weight gradients: one GEMM with beta = 1 each (cupy.cublas.gemm)
    ProductOps._mm_add = lambda self, a, b, out: bracket("cublas gemm", lambda: mm_add(self, a, b, out))
    try:
        fit = _dualnet_fit(dn, model_name, batch, STEPS)
        fit()
        per_name: dict[str, list[float]] = {}
        for _ in range(REPEATS):
            records.clear()
            fit()
            cp.cuda.get_current_stream().synchronize()
            sums: dict[str, float] = {}
            for name, s, e in records:
                sums[name] = sums.get(name, 0.0) + cp.cuda.get_elapsed_time(s, e) / STEPS
            for name, ms in sums.items():
                per_name.setdefault(name, []).append(ms)
    finally:
        CupyLauncher.launch, ProductOps._mm, ProductOps._mm_add = launch, mm, mm_add
    return {name: statistics.median(v) for name, v in per_name.items()}


def _time(event: Any, elapsed: Any, run: Any, sync: Any) -> float:
    """Median ms of `run()` over REPEATS (after one warm-up), by CUDA events: event() makes one,
    elapsed(start, end) reads the milliseconds between two."""
    times = []
    run()
    for _ in range(REPEATS):
        start, end = event(), event()
        start.record()
        run()
        end.record()
        sync()
        times.append(elapsed(start, end))
    return statistics.median(times)


def torch_module(torch: Any, layer: Any) -> Any:
    """The dualnet layer tree as torch.nn modules (same shapes; weights do not matter for timing)."""
    nn, kind = torch.nn, type(layer).__name__
    if kind == "Sequential":
        return nn.Sequential(*[torch_module(torch, c) for c in layer.layers])
    if kind == "Residual":
        body = torch_module(torch, layer.body)
        side = torch_module(torch, layer.shortcut) if layer.shortcut is not None else nn.Identity()

        class Res(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.body, self.side = body, side

            def forward(self, x: Any) -> Any:
                return self.body(x) + self.side(x)
        return Res()
    simple = {"ReLU": nn.ReLU, "Flatten": nn.Flatten}
    if kind in simple:
        return simple[kind]()
    if kind == "Conv2d":
        return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                         layer.dilation, layer.groups, bias=layer.bias is not None)
    if kind == "BatchNorm2d":
        return nn.BatchNorm2d(layer.num_features)
    if kind == "MaxPool2d":
        return nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
    if kind == "GlobalAvgPool2d":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if kind == "Linear":
        return nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    raise SystemExit(f"gpu_kernel_measure: no torch module for {kind}")


def torch_step_ms(dn: Any, model_name: str, batch: int) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cudnn.allow_tf32 = False  # the same arithmetic as dualnet's default (no TF32)
    torch.backends.cuda.matmul.allow_tf32 = False
    layers = dn.models.get(model_name, seed=0)
    net = torch_module(torch, layers).cuda()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand((batch, *layers.input_shape), device="cuda")
    y = torch.randint(0, 10, (batch,), device="cuda")
    loss_fn = torch.nn.CrossEntropyLoss()

    def steps() -> None:
        for _ in range(STEPS):
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
    return _time(lambda: torch.cuda.Event(enable_timing=True), lambda s, e: s.elapsed_time(e), steps,
                 torch.cuda.synchronize) / STEPS


def measure_main(model_name: str, batch: int, gpu: Any, json_path: pathlib.Path | None) -> None:
    import cupy as cp
    from kernel_cost import GPUS

    import dualnet as dn
    key = next(k for k, g in GPUS.items() if g == gpu)
    est = _estimates(model_name, batch, key)
    dn.use_device("gpu")
    per_kernel = measure_kernels(dn, cp, model_name, batch)
    fit = _dualnet_fit(dn, model_name, batch, STEPS)
    step_ms = _time(cp.cuda.Event, cp.cuda.get_elapsed_time, fit, cp.cuda.get_current_stream().synchronize) / STEPS
    torch_ms = torch_step_ms(dn, model_name, batch)
    by_est = {row["kernel"]: row for row in est["dualnet_by_kernel"]}
    name = cp.cuda.runtime.getDeviceProperties(0)["name"]
    print(f"dualnet {model_name}, batch {batch}, measured on {name!r} (estimates for the model's {gpu.name})")
    print(f"  {'kernel':<30} {'est ms':>8} {'meas ms':>8} {'of BW peak':>10} {'of FLOP peak':>12}")
    rows = []
    for kname, ms in sorted(per_kernel.items(), key=lambda kv: -kv[1]):
        e = by_est.get(kname) or by_est.get(f"{kname}[fp32]" if kname.startswith("cublas ") else kname, {})
        bw = e.get("mb", 0) * 1e6 / (ms * 1e-3) / gpu.bandwidth if ms else 0.0
        fl = e.get("mflop", 0) * 1e6 / (ms * 1e-3) / gpu.fp32 if ms else 0.0
        rows.append({"kernel": kname, "measured_ms": ms, "estimated_ms": e.get("us", 0) / 1e3, "bw": bw, "flop": fl})
        print(f"  {kname[:30]:<30} {e.get('us', 0) / 1e3:8.3f} {ms:8.3f} {bw:10.1%} {fl:12.1%}")
    print(f"  step: measured {step_ms:.3f} ms (estimate {est['dualnet_ms']:.3f} ms); PyTorch eager "
          + (f"measured {torch_ms:.3f} ms (estimate {est['torch_ms']:.3f} ms)" if torch_ms else "unavailable"))
    if json_path:
        json_path.write_text(json.dumps({"model": model_name, "batch": batch, "device": str(name),
                                         "step_ms": step_ms, "torch_step_ms": torch_ms,
                                         "kernels": rows, "estimate": est}, indent=2) + "\n")
