"""Data-parallel training on MPI: per-step all-reduce time and scaling efficiency (N ranks against 1).

Never a bare time: the all-reduce is printed beside the step it belongs to (its share of the
step), and N ranks beside 1 rank on the same global batch, the two launched alternately, medians.
Each job gives its ranks the host's cores evenly (dualnet.distributed.set_threads): 1 rank gets
every core, N ranks 1/N each, so the comparison is "the same machine, split N ways"; --threads T
gives every rank of both jobs T threads instead ("N times the cores").

    python benchmarks/distributed_bench.py                       # 2 ranks vs 1, LeNet-5, batch 64
    python benchmarks/distributed_bench.py --ranks 2 --rounds 5 --steps 60 --json out.json
Needs the mpi extra (pip install ".[mpi]"); mpiexec is looked for next to this Python, then on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time


def _mpiexec() -> str:
    from dualnet.distributed.job import mpiexec_path

    found = mpiexec_path()
    if not found:
        sys.exit('distributed_bench: no mpiexec found; pip install ".[mpi]"')
    return found


def worker(args: argparse.Namespace) -> None:
    """One rank: a warm-up fit, a timed fit, then the all-reduce of the flat gradient buffer alone."""
    import numpy as np

    import dualnet as dn
    from dualnet import distributed
    from dualnet.train import TrainState

    comm = distributed.communicator(device=args.device)
    rng = np.random.default_rng(0)
    n = args.batch * args.steps
    train = dn.data.Dataset(rng.random((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n), name="random")
    with dn.device(args.device):
        model = dn.models.lenet5(seed=0)
        opt = dn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        dn.fit(model, train, epochs=1, batch_size=args.batch, optimizer=opt, comm=comm)  # warm-up
        history = dn.fit(model, train, epochs=2, batch_size=args.batch, optimizer=opt, comm=comm,
                         state=TrainState(seed=1, epoch=1, base_lr=0.01))
        step_ms = history[-1]["seconds"] / args.steps * 1e3
        grad = opt.buffers()[0].grad
        reduce_us = {}
        for reduction in distributed.REDUCTIONS:
            comm.reduction = reduction
            times = []
            for _ in range(args.reduce_repeats):
                comm.barrier()
                t = time.perf_counter()
                comm.allreduce_sum(grad)
                times.append((time.perf_counter() - t) * 1e6)
            reduce_us[reduction] = statistics.median(times)
    if comm.rank == 0:
        print(json.dumps({"ranks": comm.size, "step_ms": step_ms, "allreduce_us": reduce_us,
                          "elements": int(grad.size)}))


def launch(ranks: int, args: argparse.Namespace) -> dict:
    cmd = [_mpiexec(), "-n", str(ranks), sys.executable, __file__, "--worker", "--device", args.device,
           "--batch", str(args.batch), "--steps", str(args.steps), "--reduce-repeats", str(args.reduce_repeats)]
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.pop(var, None)
        if args.threads:
            env[var] = str(args.threads)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    if done.returncode:
        sys.exit(f"distributed_bench: the {ranks}-rank job failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="alternating 1-rank / N-rank launches")
    parser.add_argument("--steps", type=int, default=40, help="steps of the global batch per timed epoch")
    parser.add_argument("--batch", type=int, default=64, help="the global batch")
    parser.add_argument("--reduce-repeats", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads per rank for both jobs [default: the cores split among the ranks]")
    parser.add_argument("--json", type=pathlib.Path, default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    rows: dict[int, list[dict]] = {1: [], args.ranks: []}
    for _ in range(args.rounds):
        for ranks in (1, args.ranks):
            rows[ranks].append(launch(ranks, args))
    one = statistics.median(r["step_ms"] for r in rows[1])
    many = statistics.median(r["step_ms"] for r in rows[args.ranks])
    reduce_us = {k: statistics.median(r["allreduce_us"][k] for r in rows[args.ranks])
                 for k in rows[args.ranks][0]["allreduce_us"]}
    speedup = one / many
    result = {"device": args.device, "threads_per_rank": args.threads or "cores / ranks", "global_batch": args.batch,
              "ranks": args.ranks, "rounds": args.rounds,
              "elements": rows[1][0]["elements"], "step_ms_1_rank": one, f"step_ms_{args.ranks}_ranks": many,
              "speedup": speedup, "scaling_efficiency": speedup / args.ranks,
              "allreduce_us": reduce_us, "allreduce_share_of_step": {k: v / 1e3 / many for k, v in reduce_us.items()},
              "runs": {str(k): v for k, v in rows.items()}}
    print(f"LeNet-5, global batch {args.batch}, {args.steps} steps, device {args.device}, threads per rank "
          f"{result['threads_per_rank']}, medians of {args.rounds} alternating launches")
    print(f"  step: 1 rank {one:.2f} ms, {args.ranks} ranks {many:.2f} ms -> speedup {speedup:.2f}x, "
          f"scaling efficiency {speedup / args.ranks:.0%}")
    for k, v in reduce_us.items():
        print(f"  all-reduce ({k}) of {result['elements']:,} float32: {v:.0f} us = "
              f"{v / 1e3 / many:.1%} of the {args.ranks}-rank step")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
