"""Conversion throughput of an image folder (dualnet.data.convert_folder): images decoded per second,
JPEG and PNG photos, 1 and 2 worker processes, alternating runs, medians.

    python benchmarks/folder_convert.py --images 300 --runs 5 --json benchmarks/results/folder_convert.json

The photos are forged once in a temporary folder: `--images` per format, split over 4 classes,
`--size` pixels (default 480x360, a typical downscaled phone photo), smooth gradients plus noise (so
JPEG and PNG compress as photos do, not as flat colour). Each run converts the whole folder of one
format to 64x64 RGB in a fresh file; the pairs (1 process, 2 processes) alternate, so a load change on
a shared machine hits both. Reported: images/s per run and the median per (format, processes).
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

import numpy as np


def forge(root: pathlib.Path, fmt: str, n: int, size: tuple[int, int]) -> pathlib.Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    folder = root / fmt
    for i in range(n):
        label = f"class{i % 4}"
        (folder / label).mkdir(parents=True, exist_ok=True)
        base = np.stack([np.sin(6 * x + i), np.cos(5 * y - i), np.sin(4 * (x + y))], axis=2) * 90 + 128
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / label / f"p{i:05d}.{'jpg' if fmt == 'jpeg' else 'png'}",
                                     **({"quality": 90} if fmt == "jpeg" else {}))
    return folder


def once(folder: pathlib.Path, processes: int, out: pathlib.Path) -> float:
    from dualnet.data import FolderOptions, convert_folder

    started = time.perf_counter()
    summary = convert_folder(folder, out, FolderOptions((64, 64), channels=3), processes=processes, report=None)
    seconds = time.perf_counter() - started
    out.unlink()
    return (summary["train"] + summary["val"] + summary["test"]) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=300, help="photos per format")
    parser.add_argument("--runs", type=int, default=5, help="alternating pairs per format")
    parser.add_argument("--size", default="480,360", help="photo width,height")
    parser.add_argument("--json", type=pathlib.Path, default=None)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split(","))
    results: dict = {"images": args.images, "size": list(size), "cpus": os.cpu_count(),
                     "load_before": os.getloadavg(), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        for fmt in ("jpeg", "png"):
            folder = forge(root, fmt, args.images, size)
            rates: dict[int, list[float]] = {1: [], 2: []}
            for r in range(args.runs):
                for processes in ((1, 2) if r % 2 == 0 else (2, 1)):
                    rates[processes].append(once(folder, processes, root / "out.h5"))
                    print(f"{fmt} processes={processes} run {r}: {rates[processes][-1]:.0f} images/s", file=sys.stderr)
            results["runs"][fmt] = {str(p): {"images_per_s": v, "median": statistics.median(v)}
                                    for p, v in rates.items()}
    results["load_after"] = os.getloadavg()
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
