"""dualnet on "cpu" against PyTorch's CPU build: one training epoch of LeNet-5 on MNIST, side by side.

Both frameworks train the same network (DESIGN.md's lenet5) from the same initial weights (copied
from dualnet's seeded initialisation), on the same batches in the same order, with the same
optimizer (SGD, momentum 0.9, lr 0.01, float32) and the same number of threads. Each run happens in
a fresh child process, so that peak resident memory is that framework's own, and the two
frameworks alternate (dualnet, torch, dualnet, torch, ...): on a noisy machine only ratios between
neighbouring runs mean anything.

Printed: epoch seconds (median, min), inference images/s (batch 1000 over the test set), peak
resident memory of the training process, the ratios dualnet/PyTorch and the two test accuracies;
and the machine: CPU model, load average, each side's BLAS (library, version, kernel, threads:
threadpoolctl). dualnet's inference runs under dn.no_grad(), as dn.predict and dn.evaluate run it.

`--inference` times eval-mode forward alone instead (no training): the test set through LeNet-5
at batch 64, 256 and 1000, dualnet on "cpu" against PyTorch under torch.inference_mode, the same
weights, the same threads, each run a fresh process, alternating; printed per batch size: images/s
(median over runs of the median of PASSES passes) and the ratio dualnet/PyTorch.

Usage:
    pip install -e '.[bench]'            # PyTorch 2.13.0, CPU build (never needed by the library)
    python benchmarks/compare_torch.py [--runs 3] [--threads 2] [--limit N] [--json FILE]
    python benchmarks/compare_torch.py --inference [--runs 5] [--json FILE]
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
from peer_runs import describe_pools, load_average, machine_header, report, spawn, torch_sgd_epoch  # noqa: E402

BATCH = 64
LR = 0.01
MOMENTUM = 0.9
SEED = 0
INFERENCE_BATCH = 1000
INFERENCE_BATCHES = (64, 256, 1000)
PASSES = 3  # timed passes over the test set per batch size and run (after one warm-up pass)


# --- child side: one framework, one run ------------------------------------------------------


def _load_mnist(limit: int | None):
    import numpy as np

    import dualnet as dn

    train = dn.data.load("mnist", "all-train", limit=limit)
    test = dn.data.load("mnist", "test")
    order = dn.data.epoch_order(len(train), SEED, 0)
    return (train.images.astype(np.float32), train.labels.astype(np.int64), test.images.astype(np.float32),
            test.labels.astype(np.int64), order)


def _initial_weights() -> dict:
    """dualnet's seeded lenet5 initialisation, by parameter name (the torch side copies it)."""
    import dualnet as dn

    model = dn.models.get("lenet5")
    return {name: p.data.copy() for name, p in model.named_parameters()}


def run_dualnet(limit: int | None, weights_file: str) -> dict:
    import numpy as np

    import dualnet as dn

    x_train, y_train, x_test, y_test, order = _load_mnist(limit)
    model = dn.models.get("lenet5")
    stored = np.load(weights_file)
    for name, p in model.named_parameters():
        p.data[...] = stored[name]
    train = dn.data.Dataset(x_train, y_train, name="bench")
    opt = dn.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    t = time.perf_counter()
    history = dn.fit(model, train, None, epochs=1, batch_size=BATCH, optimizer=opt, seed=SEED)
    epoch_s = time.perf_counter() - t
    assert history and len(order) == len(x_train)

    model.eval()

    def predict():
        with dn.no_grad():  # inference as dn.predict and dn.evaluate run it
            return np.concatenate([model(x_test[i:i + INFERENCE_BATCH]).argmax(axis=1)
                                   for i in range(0, len(x_test), INFERENCE_BATCH)])

    predict()  # warm-up: first-touch allocations
    t = time.perf_counter()
    pred = predict()
    infer_s = time.perf_counter() - t
    return dict(epoch_s=epoch_s, images_per_s=len(x_test) / infer_s, accuracy=float((pred == y_test).mean()),
                train_loss=history[0]["train_loss"])


def _torch_lenet5(weights_file: str):
    """DESIGN.md's lenet5 in PyTorch, with the weights of `weights_file` (dualnet's names)."""
    import numpy as np
    import torch
    from torch import nn

    net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                        nn.ReLU(), nn.Linear(84, 10))
    stored = np.load(weights_file)
    torch_names = {"conv1": net[0], "conv2": net[3], "fc1": net[7], "fc2": net[9], "fc3": net[11]}
    with torch.no_grad():
        for layer_name, module in torch_names.items():
            module.weight.copy_(torch.from_numpy(stored[f"{layer_name}.weight"]))
            module.bias.copy_(torch.from_numpy(stored[f"{layer_name}.bias"]))
    return net


def run_torch(limit: int | None, weights_file: str) -> dict:
    import torch

    torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
    x_train, y_train, x_test, y_test, order = _load_mnist(limit)
    net = _torch_lenet5(weights_file)
    epoch_s, train_loss = torch_sgd_epoch(torch, net, x_train, y_train, order, BATCH, LR, MOMENTUM)

    net.eval()
    xt = torch.from_numpy(x_test)

    def predict():
        with torch.no_grad():
            return torch.cat([net(xt[i:i + INFERENCE_BATCH]).argmax(dim=1)
                              for i in range(0, len(xt), INFERENCE_BATCH)]).numpy()

    predict()
    t = time.perf_counter()
    pred = predict()
    infer_s = time.perf_counter() - t
    return dict(epoch_s=epoch_s, images_per_s=len(x_test) / infer_s, accuracy=float((pred == y_test).mean()),
                train_loss=train_loss)


def _time_passes(predict, n_images: int) -> float:
    """images/s of `predict` (one pass over the test set): the median of PASSES timed passes."""
    predict()  # warm-up: first-touch allocations
    times = []
    for _ in range(PASSES):
        t = time.perf_counter()
        predict()
        times.append(time.perf_counter() - t)
    return n_images / statistics.median(times)


def infer_dualnet(weights_file: str) -> dict:
    import numpy as np

    import dualnet as dn

    x_test = dn.data.load("mnist", "test").images.astype(np.float32)
    model = dn.models.get("lenet5")
    stored = np.load(weights_file)
    for name, p in model.named_parameters():
        p.data[...] = stored[name]
    model.eval()
    rates, preds = {}, None
    for batch in INFERENCE_BATCHES:
        def predict(batch=batch):
            with dn.no_grad():  # inference as dn.predict and dn.evaluate run it
                return np.concatenate([model(x_test[i:i + batch]).argmax(axis=1)
                                       for i in range(0, len(x_test), batch)])
        rates[str(batch)] = _time_passes(predict, len(x_test))
        preds = predict()
    return dict(images_per_s=rates, predictions=preds.tolist())


def infer_torch(weights_file: str) -> dict:
    import numpy as np
    import torch

    import dualnet as dn

    torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
    xt = torch.from_numpy(dn.data.load("mnist", "test").images.astype(np.float32))
    net = _torch_lenet5(weights_file)
    net.eval()
    rates, preds = {}, None
    for batch in INFERENCE_BATCHES:
        def predict(batch=batch):
            with torch.inference_mode():
                return torch.cat([net(xt[i:i + batch]).argmax(dim=1) for i in range(0, len(xt), batch)]).numpy()
        rates[str(batch)] = _time_passes(predict, len(xt))
        preds = predict()
    return dict(images_per_s=rates, predictions=preds.tolist())


def child(framework: str, limit: int | None, weights_file: str, inference: bool = False) -> None:
    if inference:
        report((infer_dualnet if framework == "dualnet" else infer_torch)(weights_file))
    else:
        report((run_dualnet if framework == "dualnet" else run_torch)(limit, weights_file))


# --- parent side: alternate runs, print ratios ------------------------------------------------


def _spawn(framework: str, args, weights_file: str) -> dict:
    extra = ["--weights", weights_file] + (["--inference"] if args.inference else [])
    return spawn(__file__, framework, args.threads, extra + (["--limit", str(args.limit)] if args.limit else []))


def _torch_version() -> str | None:
    """PyTorch's version, or None if it cannot be imported (the parent only asks; the runs
    happen in children, so this import costs no measured time or memory)."""
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


def _compare_inference(args, weights_file: str, torch_version: str, machine: dict) -> None:
    """Alternate inference-only children; print images/s per batch size and the ratios."""
    import numpy as np

    runs: dict[str, list[dict]] = {"dualnet": [], "torch": []}
    for run in range(args.runs):
        for framework in ("dualnet", "torch"):
            r = _spawn(framework, args, weights_file)
            runs[framework].append(r)
            rates = "  ".join(f"batch {b}: {r['images_per_s'][str(b)]:8.0f}" for b in INFERENCE_BATCHES)
            print(f"run {run + 1}/{args.runs} {framework:8s} img/s  {rates}", flush=True)
    agree = float(np.mean(np.array(runs["dualnet"][0]["predictions"]) == np.array(runs["torch"][0]["predictions"])))
    rate = {fw: {str(b): statistics.median(r["images_per_s"][str(b)] for r in runs[fw]) for b in INFERENCE_BATCHES}
            for fw in runs}
    ratio = {str(b): rate["dualnet"][str(b)] / rate["torch"][str(b)] for b in INFERENCE_BATCHES}
    print()
    print(f"{'inference img/s':24s}{'dualnet':>12s}{'PyTorch ' + torch_version:>20s}{'ratio':>10s}")
    for b in INFERENCE_BATCHES:
        print(f"{'batch ' + str(b):24s}{rate['dualnet'][str(b)]:12.0f}{rate['torch'][str(b)]:20.0f}"
              f"{ratio[str(b)]:10.2f}   (dualnet/PyTorch; >= 1.0 is parity or better)")
    print(f"predictions agree on {agree:.2%} of the test images (same weights)")
    pools = describe_pools(runs)
    machine["load_average_end"] = load_average()
    print(f"load average at the end: {machine['load_average_end']}")
    if args.json_out:
        summary = {"machine": machine, "numpy": np.__version__, "blas": pools,
                   "torch": torch_version, "runs": args.runs, "passes": PASSES, "images_per_s": rate,
                   "inference_ratio": ratio, "prediction_agreement": agree}
        pathlib.Path(args.json_out).write_text(json.dumps(summary, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per framework (alternating)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS / torch threads for both")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the results here")
    parser.add_argument("--inference", action="store_true",
                        help="time eval-mode forward at batch 64, 256 and 1000 instead of a training epoch")
    parser.add_argument("--child", choices=("dualnet", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.limit, args.weights, args.inference)
        return
    if args.runs < 1 or args.threads < 1:
        parser.error("--runs and --threads must be >= 1")
    torch_version = _torch_version()
    if torch_version is None:
        sys.exit("compare_torch: PyTorch is not installed; `pip install torch==2.13.0` (the CPU build) "
                 "or `pip install -e '.[bench]'`")

    import numpy as np

    import dualnet as dn

    machine = machine_header(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        weights_file = str(pathlib.Path(tmp) / "lenet5_init.npz")
        np.savez(weights_file, **_initial_weights())
        if args.inference:
            _compare_inference(args, weights_file, torch_version, machine)
            return
        results: dict[str, list[dict]] = {"dualnet": [], "torch": []}
        for run in range(args.runs):
            for framework in ("dualnet", "torch"):
                r = _spawn(framework, args, weights_file)
                results[framework].append(r)
                print(f"run {run + 1}/{args.runs} {framework:8s} epoch {r['epoch_s']:6.2f} s  "
                      f"inference {r['images_per_s']:8.0f} img/s  peak {r['peak_rss_mb']:5.0f} MB  "
                      f"loss {r['train_loss']:.4f}  test acc {r['accuracy']:.4f}", flush=True)

    def med(fw: str, key: str) -> float:
        return statistics.median(r[key] for r in results[fw])

    def low(fw: str, key: str) -> float:
        return min(r[key] for r in results[fw])

    pools = describe_pools(results)
    machine["load_average_end"] = load_average()
    print(f"load average at the end: {machine['load_average_end']}")
    summary = {
        "machine": machine, "blas": pools, "numpy": np.__version__,
        "dualnet": dn.__version__, "torch": torch_version, "runs": args.runs, "limit": args.limit,
        "epoch_s": {fw: {"median": med(fw, "epoch_s"), "min": low(fw, "epoch_s")} for fw in results},
        "images_per_s": {fw: med(fw, "images_per_s") for fw in results},
        "peak_rss_mb": {fw: max(r["peak_rss_mb"] for r in results[fw]) for fw in results},
        "accuracy": {fw: med(fw, "accuracy") for fw in results},
        "epoch_ratio": med("dualnet", "epoch_s") / med("torch", "epoch_s"),
        "inference_ratio": med("dualnet", "images_per_s") / med("torch", "images_per_s"),
        "pair_ratios": [d["epoch_s"] / t["epoch_s"] for d, t in zip(results["dualnet"], results["torch"])],
    }
    print()
    print(f"{'':24s}{'dualnet':>12s}{'PyTorch ' + torch_version:>20s}{'ratio':>10s}")
    e = summary["epoch_s"]
    print(f"{'epoch s (median)':24s}{e['dualnet']['median']:12.2f}{e['torch']['median']:20.2f}"
          f"{summary['epoch_ratio']:10.2f}   (dualnet/PyTorch; <= 1.0 is parity or better)")
    print(f"{'epoch s (min)':24s}{e['dualnet']['min']:12.2f}{e['torch']['min']:20.2f}"
          f"{e['dualnet']['min'] / e['torch']['min']:10.2f}")
    i = summary["images_per_s"]
    print(f"{'inference img/s':24s}{i['dualnet']:12.0f}{i['torch']:20.0f}{summary['inference_ratio']:10.2f}"
          "   (dualnet/PyTorch; higher is better)")
    m = summary["peak_rss_mb"]
    print(f"{'peak RSS MB':24s}{m['dualnet']:12.0f}{m['torch']:20.0f}{m['dualnet'] / m['torch']:10.2f}")
    a = summary["accuracy"]
    print(f"{'test accuracy':24s}{a['dualnet']:12.4f}{a['torch']:20.4f}")
    print("epoch pair ratios: " + ", ".join(f"{r:.2f}" for r in summary["pair_ratios"]))
    if args.json_out:
        pathlib.Path(args.json_out).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
