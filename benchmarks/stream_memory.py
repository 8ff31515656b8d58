"""Peak resident memory of `dualnet train --stream` on an HDF5 dataset larger than memory allows.

Writes a uint8 (N, 3, 32, 32) dataset of --gigabytes (chunked writes, in a temporary folder that is
removed afterwards), then trains one epoch on it with `dualnet train --stream` in a child process
and reads the child's peak resident memory from os.wait4 (resource usage of that child. The peer is
the data itself: the figure printed is peak RSS against the dataset's bytes (an in-memory load
would hold the bytes plus their float32 copy: 5x the file). A second child, the same command on
the first --peer-rows images loaded in memory, gives the resident memory of the process without
the data.

Usage: python benchmarks/stream_memory.py [--gigabytes 3] [--model mlp] [--limit N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

ROWS_PER_WRITE = 8192
IMAGE = (3, 32, 32)


def write_dataset(path: str, n: int, classes: int = 10) -> None:
    """n uint8 images (chunks of 256 images) with labels 0..classes-1, written a block at a time."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        images = f.create_dataset("images", shape=(n, *IMAGE), dtype=np.uint8, chunks=(256, *IMAGE))
        for start in range(0, n, ROWS_PER_WRITE):
            stop = min(n, start + ROWS_PER_WRITE)
            images[start:stop] = rng.integers(0, 256, (stop - start, *IMAGE), dtype=np.uint8)
        f["labels"] = rng.integers(0, classes, n)


def train_child(args: list[str], tmp: str) -> tuple[float, int, list[dict]]:
    """(seconds, the child's peak RSS in bytes, its JSON events) of one `dualnet train` child; the RSS
    is that child's own (os.wait4), not a running maximum over children."""
    out_path = os.path.join(tmp, "child.out")
    started = time.perf_counter()
    with open(out_path, "w") as out, open(out_path + ".err", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "dualnet_cli.main", "train", *args, "--json"], stdout=out,
                                stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode:
        sys.exit(f"stream_memory: dualnet train failed: {open(out_path + '.err').read().strip()}")
    with open(out_path) as f:
        events = [json.loads(line) for line in f if line.startswith("{")]
    return seconds, usage.ru_maxrss * 1024, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=3.0)
    parser.add_argument("--model", default="mlp", help="the model trained (resnet8, the colour default, is slow "
                                                        "on a CPU for a million images)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--augment", action="store_true", help="keep the colour recipe's crop and flip (CPU time, "
                                                                  "not memory; off by default)")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    parser.add_argument("--peer-rows", type=int, default=20000)
    parser.add_argument("--dir", default=None, help="where the temporary dataset goes (default: the system's)")
    parser.add_argument("--json", dest="json_out", default=None)
    a = parser.parse_args()
    n = int(a.gigabytes * 1e9) // int(np.prod(IMAGE))
    with tempfile.TemporaryDirectory(dir=a.dir) as tmp:
        path = os.path.join(tmp, "big.h5")
        t = time.perf_counter()
        write_dataset(path, n)
        write_s = time.perf_counter() - t
        size = os.path.getsize(path)
        common = ["--data", path, "--model", a.model, "--epochs", "1", "--batch-size", str(a.batch_size),
                  "--device", "cpu", "--overwrite"]
        common += [] if a.augment else ["--augment-crop", "0", "--no-augment-flip"]
        limit = ["--limit", str(a.limit)] if a.limit else []
        stream_s, stream_rss, events = train_child([*common, *limit, "--stream", "--out", os.path.join(tmp, "s.h5")],
                                                   tmp)
        peer_data = os.path.join(tmp, "peer.h5")
        write_dataset(peer_data, a.peer_rows)
        peer = [arg if arg != path else peer_data for arg in common]
        peer_s, peer_rss, _ = train_child([*peer, "--validation", str(a.peer_rows // 6), "--out",
                                           os.path.join(tmp, "p.h5")], tmp)
    epoch = next(e for e in events if e["event"] == "epoch")
    result = dict(images=n, file_bytes=size, write_seconds=round(write_s, 1), trained_images=a.limit or n - 10000,
                  model=a.model, batch_size=a.batch_size, stream_seconds=round(stream_s, 1),
                  epoch_seconds=round(epoch["seconds"], 1), images_per_s=round(epoch["images_per_s"]),
                  stream_peak_rss_bytes=stream_rss, rss_over_file=round(stream_rss / size, 3),
                  peer_rows=a.peer_rows, peer_in_memory_peak_rss_bytes=peer_rss,
                  stream_rss_over_peer_rss=round(stream_rss / peer_rss, 2), train_loss=epoch["train_loss"])
    print(f"dataset: {n:,} images (3x32x32 uint8), {size / 1e9:.2f} GB, written in {write_s:.0f} s")
    print(f"streamed epoch of {result['trained_images']:,} images ({a.model}, batch {a.batch_size}): "
          f"{epoch['seconds']:.0f} s, {epoch['images_per_s']:,.0f} images/s")
    print(f"peak resident memory: streamed {stream_rss / 2**20:,.0f} MiB = {stream_rss / size:.3f} x the file; "
          f"in-memory peer on {a.peer_rows:,} images {peer_rss / 2**20:,.0f} MiB (ratio {stream_rss / peer_rss:.2f})")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
