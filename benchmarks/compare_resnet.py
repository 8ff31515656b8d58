"""dualnet on "cpu" against PyTorch's CPU build: ResNet-8 or ResNet-20 on 3x32x32 images, one
training epoch or eval-mode inference at batch 64, 256 and 1000.

Both frameworks run the same network (dn.models.get(--model): conv-BN-ReLU stem, three stages of
1 (resnet8) or 3 (resnet20) residual blocks, global average pooling, linear) from the same weights
(dualnet's seeded initialisation copied into torch, parameter by parameter, and for inference the
same seeded running statistics and affine maps of every batch norm), on the same seeded synthetic
images in the same batches and order, with the same optimizer (SGD, momentum 0.9, lr 0.05,
float32) and thread count. Each run is a fresh child process; the frameworks alternate (dualnet,
torch, dualnet, ...) and the medians are compared, since only ratios between neighbouring runs
mean anything on a shared machine. The CPU model, the load average and each side's BLAS (library,
version, kernel, threads: threadpoolctl) are printed with the results.

Training prints epoch seconds (median, min), peak resident memory, the ratios dualnet/PyTorch and
both epochs' mean training loss (equal weights and batches: they must agree closely). Inference
(`--inference`) prints images/s per batch size (median over runs of the median of PASSES passes
over the images, after a warm-up batch), dualnet under dn.no_grad() as dn.predict and dn.evaluate
run it, PyTorch under torch.inference_mode(); and how far the two sides' logits differ.

Usage:
    pip install -e '.[bench]'            # PyTorch 2.13.0, CPU build, and threadpoolctl
    python benchmarks/compare_resnet.py [--model resnet20] [--runs 3] [--threads 2] [--images 4000] [--json FILE]
    python benchmarks/compare_resnet.py --inference [--model resnet20] [--infer-images 1000] [--passes 3] [--runs 3]
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
from peer_runs import (  # noqa: E402
    describe_pools,
    load_average,
    machine_header,
    report,
    spawn,
    torch_resnet,
    torch_sgd_epoch,
)

BATCH = 64
LR = 0.05
MOMENTUM = 0.9
SEED = 0
MODELS = {"resnet8": 1, "resnet20": 3}  # residual blocks per stage
INFERENCE_BATCHES = (64, 256, 1000)
PASSES = 3  # default timed passes over the images per batch size and run (--passes)


def _data(images: int, seed: int = SEED):
    """Seeded synthetic CIFAR-shaped data and dualnet's epoch order (identical in every child)."""
    import numpy as np

    import dualnet as dn

    gen = np.random.default_rng(seed)
    x = gen.random((images, 3, 32, 32), dtype=np.float32)
    y = gen.integers(0, 10, images).astype(np.int64)
    return x, y, dn.data.epoch_order(images, seed, 0)


def _initial_state(model_name: str, inference: bool) -> dict:
    """dualnet's seeded parameters ("p:" + name) and batch-norm statistics ("b:" + name), in
    construction order; for inference the statistics and affine maps are seeded values, not the
    trivial initial ones, so that evaluation normalises for real."""
    import numpy as np

    import dualnet as dn

    model = dn.models.get(model_name)
    gen = np.random.default_rng(SEED + 1)
    state = {}
    for name, p in model.named_parameters():
        value = p.data.copy()
        if inference and p.data.ndim == 1 and (name.endswith(".weight") or name.endswith(".bias")) \
                and "bn" in name.split(".")[-2]:
            value = (value + gen.normal(0, 0.2, value.shape)).astype(value.dtype)
        state["p:" + name] = value
    for name, b in model.named_buffers():
        if name.endswith("running_mean") or name.endswith("running_var"):
            value = b.copy()
            if inference:
                value = (gen.normal(0, 0.2, value.shape) if name.endswith("mean")
                         else gen.uniform(0.5, 2.0, value.shape)).astype(value.dtype)
            state["b:" + name] = value
    return state


def _dualnet_model(model_name: str, weights_file: str):
    import numpy as np

    import dualnet as dn

    model = dn.models.get(model_name)
    stored = np.load(weights_file)
    for name, p in model.named_parameters():
        p.data[...] = stored["p:" + name]
    for name, b in model.named_buffers():
        if "b:" + name in stored.files:
            b[...] = stored["b:" + name]
    return model


def run_dualnet(args, weights_file: str) -> dict:
    import dualnet as dn

    x, y, _ = _data(args.images)
    model = _dualnet_model(args.model, weights_file)
    opt = dn.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    t = time.perf_counter()
    history = dn.fit(model, dn.data.Dataset(x, y, name="synthetic"), None, epochs=1, batch_size=BATCH,
                     optimizer=opt, seed=SEED)
    return dict(epoch_s=time.perf_counter() - t, train_loss=history[0]["train_loss"])


def _torch_resnet(torch, blocks: int):
    return torch_resnet(torch.nn, blocks)


def _torch_model(torch, model_name: str, weights_file: str):
    import numpy as np

    net = _torch_resnet(torch, MODELS[model_name])
    stored = np.load(weights_file)
    params = [k for k in stored.files if k.startswith("p:")]
    stats = [k for k in stored.files if k.startswith("b:")]
    mine = list(net.parameters())
    mine_stats = [b for n, b in net.named_buffers() if n.endswith("running_mean") or n.endswith("running_var")]
    # both frameworks list parameters in construction order: body before shortcut, weight before bias
    if len(mine) != len(params) or len(mine_stats) != len(stats):
        raise SystemExit(f"compare_resnet: torch has {len(mine)} parameters and {len(mine_stats)} statistics, "
                         f"dualnet {len(params)} and {len(stats)}")
    with torch.no_grad():
        for p, name in zip(mine + mine_stats, params + stats):
            if tuple(p.shape) != stored[name].shape:
                raise SystemExit(f"compare_resnet: {name} is {stored[name].shape} in dualnet, "
                                 f"{tuple(p.shape)} in torch")
            p.copy_(torch.from_numpy(stored[name]))
    return net


def run_torch(args, weights_file: str) -> dict:
    import torch

    torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
    x, y, order = _data(args.images)
    net = _torch_model(torch, args.model, weights_file)
    epoch_s, train_loss = torch_sgd_epoch(torch, net, x, y, order, BATCH, LR, MOMENTUM)
    return dict(epoch_s=epoch_s, train_loss=train_loss)


def _rates(forward, x, passes: int) -> tuple[dict, list]:
    """images/s of `forward` over x at each batch size (median of `passes` passes after a warm-up
    batch) and the logits of the last pass at batch 1000, for the agreement check."""
    import numpy as np

    rates, logits = {}, None
    for batch in INFERENCE_BATCHES:
        forward(x[:batch])  # warm-up: first-touch allocations of this batch size
        times = []
        for _ in range(passes):
            t = time.perf_counter()
            out = [forward(x[i:i + batch]) for i in range(0, len(x), batch)]
            times.append(time.perf_counter() - t)
        rates[str(batch)] = len(x) / statistics.median(times)
        logits = np.concatenate(out)
    return rates, logits[:200].tolist()


def infer_dualnet(args, weights_file: str) -> dict:
    import dualnet as dn

    x, _, _ = _data(args.infer_images, SEED + 2)
    model = _dualnet_model(args.model, weights_file).eval()

    def forward(xb):
        with dn.no_grad():  # inference as dn.predict and dn.evaluate run it
            return model(xb)

    rates, logits = _rates(forward, x, args.passes)
    return dict(images_per_s=rates, logits=logits)


def infer_torch(args, weights_file: str) -> dict:
    import torch

    torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
    x, _, _ = _data(args.infer_images, SEED + 2)
    net = _torch_model(torch, args.model, weights_file).eval()

    def forward(xb):
        with torch.inference_mode():
            return net(torch.from_numpy(xb)).numpy()

    rates, logits = _rates(forward, x, args.passes)
    return dict(images_per_s=rates, logits=logits)


def child(args) -> None:
    table = {("dualnet", False): run_dualnet, ("torch", False): run_torch,
             ("dualnet", True): infer_dualnet, ("torch", True): infer_torch}
    report(table[(args.child, args.inference)](args, args.weights))


def _spawn(framework: str, args, weights_file: str) -> dict:
    extra = ["--weights", weights_file, "--images", str(args.images), "--model", args.model,
             "--infer-images", str(args.infer_images), "--passes", str(args.passes)]
    extra += ["--inference"] if args.inference else []
    return spawn(__file__, framework, args.threads, extra)


def _alternate(args, weights_file: str, line) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {"dualnet": [], "torch": []}
    for run in range(args.runs):
        for framework in ("dualnet", "torch"):
            r = _spawn(framework, args, weights_file)
            results[framework].append(r)
            print(f"run {run + 1}/{args.runs} {framework:8s} {line(r)}", flush=True)
    return results


def _training(args, weights_file: str, summary: dict, torch_version: str) -> None:
    results = _alternate(args, weights_file, lambda r: f"epoch {r['epoch_s']:6.2f} s  peak {r['peak_rss_mb']:5.0f} MB  "
                                                       f"loss {r['train_loss']:.5f}")

    def med(fw: str, key: str) -> float:
        return statistics.median(r[key] for r in results[fw])

    e = {fw: {"median": med(fw, "epoch_s"), "min": min(r["epoch_s"] for r in results[fw])} for fw in results}
    rss = {fw: max(r["peak_rss_mb"] for r in results[fw]) for fw in results}
    pair = [d["epoch_s"] / t["epoch_s"] for d, t in zip(results["dualnet"], results["torch"])]
    summary.update(images=args.images, batch=BATCH, epoch_s=e, peak_rss_mb=rss, pair_ratios=pair,
                   train_loss={fw: med(fw, "train_loss") for fw in results},
                   epoch_ratio=e["dualnet"]["median"] / e["torch"]["median"], blas=describe_pools(results))
    print()
    print(f"{args.model}, {args.images} images, batch {BATCH}")
    print(f"{'':22s}{'dualnet':>12s}{'PyTorch ' + torch_version:>20s}{'ratio':>10s}")
    print(f"{'epoch s (median)':22s}{e['dualnet']['median']:12.2f}{e['torch']['median']:20.2f}"
          f"{summary['epoch_ratio']:10.2f}   (dualnet/PyTorch; <= 1.0 is parity or better)")
    print(f"{'epoch s (min)':22s}{e['dualnet']['min']:12.2f}{e['torch']['min']:20.2f}"
          f"{e['dualnet']['min'] / e['torch']['min']:10.2f}")
    print(f"{'peak RSS MB':22s}{rss['dualnet']:12.0f}{rss['torch']:20.0f}{rss['dualnet'] / rss['torch']:10.2f}")
    loss = summary["train_loss"]
    print(f"{'train loss (epoch)':22s}{loss['dualnet']:12.5f}{loss['torch']:20.5f}")
    print("pair ratios: " + ", ".join(f"{r:.2f}" for r in pair))


def _inference(args, weights_file: str, summary: dict, torch_version: str) -> None:
    import numpy as np

    results = _alternate(args, weights_file, lambda r: "img/s  " + "  ".join(
        f"batch {b}: {r['images_per_s'][str(b)]:7.0f}" for b in INFERENCE_BATCHES))
    rate = {fw: {str(b): statistics.median(r["images_per_s"][str(b)] for r in results[fw])
                 for b in INFERENCE_BATCHES} for fw in results}
    ratio = {str(b): rate["dualnet"][str(b)] / rate["torch"][str(b)] for b in INFERENCE_BATCHES}
    ours, theirs = np.array(results["dualnet"][0]["logits"]), np.array(results["torch"][0]["logits"])
    diff = float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30))
    agree = float((ours.argmax(1) == theirs.argmax(1)).mean())
    summary.update(infer_images=args.infer_images, passes=args.passes, images_per_s=rate, inference_ratio=ratio,
                   logits_max_rel_diff=diff, class_agreement=agree, blas=describe_pools(results))
    print()
    print(f"{args.model} inference, {args.infer_images} images")
    print(f"{'img/s (median)':22s}{'dualnet':>12s}{'PyTorch ' + torch_version:>20s}{'ratio':>10s}")
    for b in INFERENCE_BATCHES:
        print(f"{'batch ' + str(b):22s}{rate['dualnet'][str(b)]:12.0f}{rate['torch'][str(b)]:20.0f}"
              f"{ratio[str(b)]:10.2f}   (dualnet/PyTorch; >= 1.0 is parity or better)")
    print(f"logits: max difference {diff:.1e} of the largest; same class for {agree:.1%} of 200 images")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", choices=tuple(MODELS), default="resnet8", help="the network (dn.models)")
    parser.add_argument("--runs", type=int, default=3, help="runs per framework (alternating)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS / torch threads for both")
    parser.add_argument("--images", type=int, default=4_000, help="synthetic training images")
    parser.add_argument("--inference", action="store_true",
                        help="time eval-mode forward at batch 64, 256 and 1000 instead of a training epoch")
    parser.add_argument("--infer-images", type=int, default=1_000, help="images per inference pass")
    parser.add_argument("--passes", type=int, default=PASSES, help="timed inference passes per batch size")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the results here")
    parser.add_argument("--child", choices=("dualnet", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if min(args.runs, args.threads, args.passes) < 1 or args.images < BATCH \
            or args.infer_images < max(INFERENCE_BATCHES):
        parser.error(f"--runs, --threads and --passes must be >= 1, --images >= {BATCH}, "
                     f"--infer-images >= {max(INFERENCE_BATCHES)}")
    try:
        import torch
    except ImportError:
        sys.exit("compare_resnet: PyTorch is not installed; `pip install torch==2.13.0` (the CPU build) "
                 "or `pip install -e '.[bench]'`")
    import numpy as np

    summary = {"model": args.model, "runs": args.runs, "torch": torch.__version__, "numpy": np.__version__,
               "machine": machine_header(args.threads)}
    with tempfile.TemporaryDirectory() as tmp:
        weights_file = str(pathlib.Path(tmp) / f"{args.model}_init.npz")
        np.savez(weights_file, **_initial_state(args.model, args.inference))
        (_inference if args.inference else _training)(args, weights_file, summary, torch.__version__)
    summary["machine"]["load_average_end"] = load_average()
    print(f"load average at the end: {summary['machine']['load_average_end']}")
    if args.json_out:
        pathlib.Path(args.json_out).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
