"""Run by every rank of the tests' MPI jobs: small data-parallel fits, each rank's parameters saved.

usage: python dist_worker.py OUT_DIR DEVICE   (DEVICE: cpu, emu or gpu, which becomes gpu:<local rank>)
Writes OUT_DIR/<name>.rank<r>.npz (and the epoch records in <name>.rank<r>.json) for the runs
"sum", "sum_again" (a second identical fit in the same process), "ordered" (the gather-based
reduction), "bn" (a batch-norm model, on the CPU), "colour" (the colour recipe's crop, flip and
per-channel normalization, on the CPU) and, on rank 0, "single" and "colour_single" (the same fits
in one process, no communicator).
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

import dualnet as dn
from dualnet import distributed


def train_set(device: str) -> dn.data.Dataset:
    full = dn.data.load_mnist("train")
    n = 80 if device == "emu" else 400  # 400 = 6 batches of 64 and one of 16: a short last batch
    return dn.data.Dataset(full.images[:n], full.labels[:n], name="mnist-head")


def one_fit(device: str, comm: object | None, model_name: str = "lenet5") -> tuple[dict[str, np.ndarray], list[dict]]:
    with dn.device(device):
        model = dn.models.get(model_name, seed=3)
        data = train_set(device)
        val = dn.data.Dataset(data.images[:50], data.labels[:50], name="val")
        opt = dn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        batch = 32 if device == "emu" else 64
        fit_kwargs = dict(epochs=1 if device == "emu" else 2, batch_size=batch, optimizer=opt,
                          schedule="cosine", seed=5, augment_shift=1, progress_every=2)
        history = dn.fit(model, data, val, comm=comm, **fit_kwargs)
        params = {name: dn.to_numpy(p.data) for name, p in model.named_parameters()}
        params.update({"buffer:" + name: dn.to_numpy(b) for name, b in model.named_buffers()})
    return params, history


def colour_fit(comm: object | None) -> tuple[dict[str, np.ndarray], list[dict]]:
    """The colour recipe's host-side batch preparation (crop + flip, then normalization) on 3x16x16."""
    rng = np.random.default_rng(11)
    data = dn.data.Dataset(rng.integers(0, 256, (96, 3, 16, 16), dtype=np.uint8), rng.integers(0, 5, 96),
                           name="colour")
    with dn.device("cpu"):
        model = dn.models.get("lenet5", seed=3, input_shape=(3, 16, 16), num_classes=5)  # no BN: per-rank statistics
        model.normalization = dn.data.channel_stats(data.images)
        opt = dn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        history = dn.fit(model, data, epochs=1, batch_size=16, optimizer=opt, seed=5, augment_crop=2,
                         augment_flip=True, progress_every=2, comm=comm)
        params = {name: dn.to_numpy(p.data) for name, p in model.named_parameters()}
        params.update({"buffer:" + name: dn.to_numpy(b) for name, b in model.named_buffers()})
    return params, history


def main() -> None:
    out, device = pathlib.Path(sys.argv[1]), distributed.rank_device(sys.argv[2])  # gpu -> gpu:<local rank>
    runs = {"sum": distributed.communicator(device=device), "ordered": distributed.communicator(
        device=device, reduction="ordered")}
    rank = runs["sum"].rank
    (out / f"job.rank{rank}.json").write_text(json.dumps({"device": device, "backend": runs["sum"].backend,
                                                          "size": runs["sum"].size}))
    plan = [("sum", runs["sum"], "lenet5"), ("sum_again", runs["sum"], "lenet5"),
            ("ordered", runs["ordered"], "lenet5")] + ([("bn", runs["sum"], "lenet5-bn")] if device == "cpu" else [])
    for name, comm, model_name in plan:
        params, history = one_fit(device, comm, model_name)
        np.savez(out / f"{name}.rank{rank}.npz", **params)
        (out / f"{name}.rank{rank}.json").write_text(json.dumps(history))
    if device == "cpu":
        params, history = colour_fit(runs["sum"])
        np.savez(out / f"colour.rank{rank}.npz", **params)
    if rank == 0:
        params, history = one_fit(device, None)
        np.savez(out / "single.rank0.npz", **params)
        (out / "single.rank0.json").write_text(json.dumps(history))
        if device == "cpu":
            np.savez(out / "colour_single.rank0.npz", **colour_fit(None)[0])


if __name__ == "__main__":
    main()
