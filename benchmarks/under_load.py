"""How a training epoch degrades when its cores are shared: dualnet "cpu" against PyTorch, each
alone and beside busy processes (`python -c "while True: pass"`), alternating.

An epoch of LeNet-5 on MNIST (--size images) or of ResNet-8 on synthetic 3x32x32 images, in a
fresh child process per run, under each configuration in turn: dualnet with the BLAS threads the
`dualnet` command chooses (dualnet_cli/blas_threads.py: "CLI default"), dualnet with explicit
settings (--dualnet-env), PyTorch with its defaults. Every round runs each configuration once
with no competitor and once with
--busy spinning processes started just before and killed just after it; the rounds repeat --runs
times, so neighbouring runs see the same machine. Printed per configuration: the median epoch
seconds alone and shared, and their ratio (the degradation). With one busy process on a 2-core
machine, a fair share is half the machine: a degradation up to about 2 is proportional; far above
it means the run loses more than the CPU time the competitor takes (threads waiting for a
descheduled peer, spinning while they wait).

Usage:
    python benchmarks/under_load.py [--model lenet5|resnet8] [--runs 3] [--busy 1] [--size 10000]
        [--dualnet-env "OPENBLAS_NUM_THREADS=2"] [--dualnet-env "OPENBLAS_NUM_THREADS=1"] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from peer_runs import blas_pools, load_average, machine_header, torch_sgd_epoch  # noqa: E402

SEED = 0
BATCH = 64


def _lenet_data(limit: int):
    import numpy as np

    import dualnet as dn

    train = dn.data.load("mnist", "all-train", limit=limit)
    return (train.images.astype(np.float32), train.labels.astype(np.int64),
            dn.data.epoch_order(len(train), SEED, 0))


def _resnet_data(images: int):
    import numpy as np

    import dualnet as dn

    gen = np.random.default_rng(SEED)
    x = gen.random((images, 3, 32, 32), dtype=np.float32)
    return x, gen.integers(0, 10, images).astype(np.int64), dn.data.epoch_order(images, SEED, 0)


def child(framework: str, model_name: str, size: int, weights_file: str) -> None:
    if framework == "dualnet":
        import dualnet_cli  # noqa: F401  (first: the CLI's default BLAS threads, set before NumPy loads)
    import numpy as np

    x, y, order = (_lenet_data if model_name == "lenet5" else _resnet_data)(size)
    lr = 0.01 if model_name == "lenet5" else 0.05
    stored = np.load(weights_file)
    if framework == "dualnet":
        import dualnet as dn

        model = dn.models.get(model_name)
        for name, p in model.named_parameters():
            p.data[...] = stored[name]
        opt = dn.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        t = time.perf_counter()
        history = dn.fit(model, dn.data.Dataset(x, y, name="bench"), None, epochs=1, batch_size=BATCH,
                         optimizer=opt, seed=SEED)
        epoch_s, loss = time.perf_counter() - t, history[0]["train_loss"]
    else:
        import torch
        from compare_resnet import _torch_resnet
        from compare_torch import _torch_lenet5

        if model_name == "lenet5":
            net = _torch_lenet5(weights_file)
        else:
            net = _torch_resnet(torch, 1)
            with torch.no_grad():
                for p, name in zip(net.parameters(), stored.files):
                    p.copy_(torch.from_numpy(stored[name]))
        epoch_s, loss = torch_sgd_epoch(torch, net, x, y, order, BATCH, lr, 0.9)
    print(json.dumps({"epoch_s": epoch_s, "loss": loss, "blas": blas_pools()}))


def _run(config: dict, args, weights_file: str, busy: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT",
                "OMP_WAIT_POLICY", "DUALNET_BLAS_THREADS"):
        env.pop(var, None)  # each configuration starts from the library's and torch's own defaults
    env.update(config["env"])
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        time.sleep(0.2 if busy else 0)
        proc = subprocess.run([sys.executable, __file__, "--child", config["framework"], "--model", args.model,
                               "--size", str(args.size), "--weights", weights_file], env=env, capture_output=True,
                              text=True)
    finally:
        for s in spinners:
            s.kill()
            s.wait()
    if proc.returncode != 0:
        sys.exit(f"under_load: the {config['name']} run failed:\n{proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", choices=("lenet5", "resnet8"), default="lenet5")
    parser.add_argument("--runs", type=int, default=3, help="rounds (each configuration alone and shared)")
    parser.add_argument("--busy", type=int, default=1, help="competing busy processes in the shared runs")
    parser.add_argument("--size", type=int, default=None,
                        help="training images (default 10,000 MNIST for lenet5, 1,000 synthetic for resnet8)")
    parser.add_argument("--dualnet-env", action="append", default=[],
                        help="an extra dualnet configuration: space-separated VAR=VALUE settings")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--json", dest="json_out", default=None)
    parser.add_argument("--child", choices=("dualnet", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.size = args.size or (10_000 if args.model == "lenet5" else 1_000)
    if args.child:
        child(args.child, args.model, args.size, args.weights)
        return
    import numpy as np

    import dualnet as dn

    configs = [{"name": "dualnet CLI default", "framework": "dualnet", "env": {}}]
    for spec in args.dualnet_env:
        configs.append({"name": f"dualnet {spec}", "framework": "dualnet",
                        "env": dict(item.split("=", 1) for item in spec.split())})
    if not args.no_torch:
        configs.append({"name": "PyTorch default", "framework": "torch", "env": {}})
    machine = machine_header("each configuration's own")
    summary = {"model": args.model, "size": args.size, "busy": args.busy, "machine": machine}
    times: dict[str, dict[str, list[float]]] = {c["name"]: {"alone": [], "shared": []} for c in configs}
    with tempfile.TemporaryDirectory() as tmp:
        weights_file = str(pathlib.Path(tmp) / "init.npz")
        np.savez(weights_file, **{n: p.data for n, p in dn.models.get(args.model).named_parameters()})
        for run in range(args.runs):
            for config in configs:
                for busy in (0, args.busy):
                    r = _run(config, args, weights_file, busy)
                    times[config["name"]]["shared" if busy else "alone"].append(r["epoch_s"])
                    pools = ("blas", "torch", "dualnet cpu blocks")
                    threads = [p.get("num_threads") for p in r["blas"] if p.get("user_api") in pools]
                    print(f"run {run + 1}/{args.runs} {config['name']:40s} {'shared' if busy else 'alone ':6s} "
                          f"epoch {r['epoch_s']:7.2f} s  loss {r['loss']:.5f}  threads {threads}  "
                          f"load {load_average()}", flush=True)
    print()
    print(f"{args.model}, {args.size} images, {args.busy} busy process(es) in the shared runs")
    print(f"{'configuration':46s}{'alone s':>9s}{'shared s':>10s}{'shared/alone':>14s}")
    rows = {}
    for name, t in times.items():
        alone, shared = statistics.median(t["alone"]), statistics.median(t["shared"])
        rows[name] = {"alone_s": alone, "shared_s": shared, "degradation": shared / alone, "runs": t}
        print(f"{name:46s}{alone:9.2f}{shared:10.2f}{shared / alone:14.2f}")
    summary.update(results=rows, load_average_end=load_average())
    print(f"load average at the end: {summary['load_average_end']}")
    if args.json_out:
        pathlib.Path(args.json_out).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
