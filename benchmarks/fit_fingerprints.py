"""Fingerprints of training runs: each run's losses and a sha256 of its checkpoint's parameters.

A change to the training loop that means to keep the arithmetic (a refactor) must leave every line
this prints unchanged: run it before and after and diff the outputs.

    OPENBLAS_NUM_THREADS=2 python benchmarks/fit_fingerprints.py > before.json   # then after.json, diff

The runs (cpu): the numerics check (`dualnet train --epochs 1 --limit 5000 --json`), a streamed
HDF5 run, a colour run with crop, flip and normalization (in memory and streamed), a 2-rank
`mpiexec` run (skipped, saying so, without mpi4py/mpiexec) and a run interrupted by SIGINT at a
step and resumed from its checkpoint, and a short run on the emulator (the GPU code path).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
from typing import Any

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def _dualnet() -> str:
    beside = pathlib.Path(sys.executable).parent / "dualnet"
    return str(beside) if beside.exists() else "dualnet"


def param_hash(path: pathlib.Path) -> str:
    """sha256 over the checkpoint's parameters in model order (name, dtype, shape, bytes) and buffers."""
    import dualnet as dn

    model = dn.load(path)
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        a = np.ascontiguousarray(dn.to_numpy(p.data))
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    for name, b in model.named_buffers():
        a = np.ascontiguousarray(dn.to_numpy(b))
        h.update(f"buffer {name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _epochs(stdout: str) -> list[dict]:
    keep = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")
    rows = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [{k: r[k] for k in keep if k in r} for r in rows if r.get("event") == "epoch"]


def cli_run(args: list[str], out: pathlib.Path, env: dict[str, str], launcher: list[str] = (),
            device: str = "cpu") -> dict:
    cmd = [*launcher, _dualnet(), "train", *args, "--device", device, "--json", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return dict(epochs=_epochs(done.stdout), params=param_hash(out))


def write_mnist_h5(path: pathlib.Path, n: int) -> pathlib.Path:
    """The first `n` bundled MNIST training images (and 1000 test images) as an HDF5 file."""
    import h5py

    import dualnet as dn

    train, test = dn.data.load_mnist("train"), dn.data.load_mnist("test")
    with h5py.File(path, "w") as f:
        for group, ds, k in (("train", train, n), ("test", test, 1000)):
            f.create_dataset(f"{group}/images", data=ds.images[:k], chunks=(64, *ds.images.shape[1:]))
            f[f"{group}/labels"] = ds.labels[:k]
    return path


class _InterruptAt:
    """A callback that raises SIGINT in this process at (epoch, step): fit's handler turns it into a stop."""

    def __init__(self, epoch: int, step: int) -> None:
        self.epoch, self.step = epoch, step

    def on_batch(self, state: Any, info: dict) -> None:
        if info["epoch"] == self.epoch and info["step"] == self.step:
            signal.raise_signal(signal.SIGINT)


def interrupted_and_resumed(tmp: pathlib.Path) -> dict:
    import dualnet as dn
    from dualnet.run_config import RunConfig
    from dualnet.train import TrainingInterrupted

    out = tmp / "cut.h5"
    config = RunConfig(epochs=2, limit=1536, batch_size=32, augment_shift=2)
    try:
        dn.train_run(config, out=out, device="cpu", callbacks=[_InterruptAt(1, 20)], handle_signals=True)
        raise SystemExit("the interrupted run was not interrupted")
    except TrainingInterrupted:
        pass
    cut = param_hash(out)
    result = dn.resume(out, device="cpu")
    keep = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")
    whole = dn.train_run(config, out=tmp / "whole.h5", device="cpu")
    epochs = [{k: r[k] for k in keep if k in r} for r in result.history]
    return dict(epochs=epochs, params_at_cut=cut, params=param_hash(out),
                same_as_uninterrupted=[param_hash(tmp / "whole.h5") == param_hash(out),
                                       [{k: r[k] for k in keep if k in r} for r in whole.history] == epochs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="run only these fingerprints (by name)")
    only = parser.parse_args().only
    sys.path.insert(0, str(HERE.parent / "tests"))
    from conftest import write_colour_h5  # the tests' colour data set, one definition

    env = dict(os.environ, OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "2"), PYTHONHASHSEED="0")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="fit-fingerprints-"))
    results: dict[str, Any] = {}
    try:
        mnist_h5 = write_mnist_h5(tmp / "mnist.h5", 2048)
        colour = write_colour_h5(tmp / "colour.h5", n_train=192, n_test=32, size=16)
        colour_aug = ["--data", str(colour), "--epochs", "2", "--batch-size", "32", "--augment-crop", "2",
                      "--augment-flip", "--normalize", "--validation", "32"]
        runs = {
            "numerics": lambda: cli_run(["--epochs", "1", "--limit", "5000"], tmp / "a.h5", env),
            "stream": lambda: cli_run(["--data", str(mnist_h5), "--stream", "--epochs", "2", "--batch-size", "64",
                                       "--augment-shift", "2"], tmp / "b.h5", env),
            "colour": lambda: cli_run(colour_aug, tmp / "c.h5", env),
            "colour-stream": lambda: cli_run([*colour_aug, "--stream"], tmp / "d.h5", env),
            # the GPU code path (device tally, kernels) on the emulator
            "emu": lambda: cli_run(["--limit", "384", "--validation", "64", "--epochs", "2", "--batch-size", "32",
                                    "--clip-grad", "1.0"], tmp / "f.h5", env, device="emu"),
            "interrupted-resumed": lambda: interrupted_and_resumed(tmp),
        }
        from dualnet.distributed.job import mpiexec_path

        mpiexec = mpiexec_path()
        try:
            import mpi4py  # noqa: F401
        except ImportError:
            mpiexec = None
        if mpiexec:
            dist_env = dict(env, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
            runs["mpi-2-ranks"] = lambda: cli_run(["--distributed", "--limit", "2048", "--validation", "256",
                                                   "--epochs", "2", "--seed", "2"], tmp / "e.h5", dist_env,
                                                  [mpiexec, "-n", "2"])
        else:
            results["mpi-2-ranks"] = "skipped: no mpi4py or mpiexec"
        for name, fn in runs.items():
            if only and name not in only:
                continue
            results[name] = fn()
            print(f"{name}: done", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
