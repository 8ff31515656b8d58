"""The worst small inputs of each family, run through the CLI in one process that reports its cost.

    python tests/reliability/bombs.py make FOLDER    # writes the bombs and FOLDER/bombs.json
    python tests/reliability/bombs.py run FOLDER     # prints one JSON object

Every input is at most 1 MB (made in FOLDER at run time, or taken from the corpus). The process
first runs each command on valid input (its normal peak), then every bomb; it prints each bomb's
seconds and exit code, the resident peak after the normal runs and after the bombs (ru_maxrss),
so test_bombs.py can hold every bomb to 10 s and 500 MB beyond the normal peak.
"""

from __future__ import annotations

import gzip
import json
import pathlib
import resource
import struct
import sys
import time
import zlib

import h5py
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
GOOD, DIGIT = str(CORPUS / "good" / "tiny.h5"), str(CORPUS / "good" / "digit.png")
sys.path.insert(0, str(HERE))


def png(width: int, height: int, rows: bytes, depth: int = 8) -> bytes:
    from make_corpus import png_chunk

    header = struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows, 9))
            + png_chunk(b"IEND", b""))


def make(folder: pathlib.Path) -> dict[str, list[str]]:
    """The bombs: name -> argv."""
    from make_corpus import idx_bytes, save_checkpoint

    import dualnet as dn

    f = folder
    (f / "sub-1x200000.png").write_bytes(png(200_000, 1, b"\x01" + bytes(range(256)) * 781 + bytes(64)))
    (f / "sub-2400x2400.png").write_bytes(png(2400, 2400, (b"\x01" + bytes(range(240)) * 10) * 2400))
    (f / "wide-1x10000000.png").write_bytes(png(10_000_000, 1, b"\x00" + bytes(10_000_000)))
    (f / "p2-huge-header.pgm").write_bytes(b"P2\n10000 10000\n255\n" + b"1 " * 400_000)
    with open(f / "npy-huge-header.npy", "wb") as out:  # a header for 800 MB, then 1000 bytes
        np.lib.format.write_array_header_1_0(out, {"descr": "<f8", "fortran_order": False, "shape": (10000, 10000)})
        out.write(bytes(1000))
    # dn.save refuses to write such a model (it would not load back): the padding is edited in
    model = dn.Sequential(dn.layers.Conv2d(1, 6, 5), dn.layers.Flatten(), input_shape=(1, 28, 28))
    path = save_checkpoint(f / "conv-padding-1000.h5", model=model, train_config=None)
    with h5py.File(path, "r+") as h:
        config = json.loads(h["model"].attrs["config"])
        config["layers"][0]["config"]["padding"] = [1000, 1000]
        h["model"].attrs["config"] = json.dumps(config)
    with h5py.File(f / "zeros-compressed.h5", "w") as h:  # ~150 KB declaring 157 MB of pixels
        h.create_dataset("images", data=np.zeros((200_000, 28, 28), np.uint8), compression="gzip",
                         compression_opts=9, chunks=(5000, 28, 28))
        h.create_dataset("labels", data=np.zeros(200_000, np.int64), compression="gzip", compression_opts=9)
    idx = f / "idx-zeros"
    idx.mkdir()
    for part in ("train", "t10k"):
        (idx / f"{part}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((300_000, 28, 28),
                                                                                             np.uint8)), 9))
        (idx / f"{part}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(300_000, np.uint8)), 9))
    for path in f.rglob("*"):
        assert not path.is_file() or path.stat().st_size <= 1 << 20, path
    predict = ["predict", GOOD]
    images = ["sub-1x200000.png", "sub-2400x2400.png", "wide-1x10000000.png", "p2-huge-header.pgm",
              "npy-huge-header.npy"]
    bombs = {name: [*predict, str(f / name)] for name in images}
    for name in ("one-bit-10000x10000.png", "jpeg-header-60000x60000.jpg", "zip-bomb.png"):
        bombs[name] = [*predict, str(CORPUS / "images" / name)]
    bombs["conv-padding-1000.h5"] = ["predict", str(f / "conv-padding-1000.h5"), DIGIT]
    bombs["zeros-compressed.h5"] = ["evaluate", GOOD, "--data", str(f / "zeros-compressed.h5"), "--split",
                                    "all-train", "--device", "cpu"]
    bombs["idx-zeros"] = ["train", "--data", str(idx), "--epochs", "1", "--device", "cpu", "--out",
                          str(f / "run.h5")]
    bombs["h5-huge-unwritten-datasets.h5"] = ["evaluate", GOOD, "--data",
                                              str(CORPUS / "data" / "h5-huge-unwritten-datasets.h5")]
    return bombs


def run(argv: list[str]) -> tuple[int, float]:
    from dualnet_cli.main import main

    start = time.perf_counter()
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, time.perf_counter() - start


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def main() -> int:
    mode, folder = sys.argv[1], pathlib.Path(sys.argv[2])
    if mode == "make":  # in a process of its own: building the bombs takes memory
        (folder / "bombs.json").write_text(json.dumps(make(folder)))
        return 0
    bombs = json.loads((folder / "bombs.json").read_text())
    # ru_maxrss only grows: commands go in the order of their normal peaks, each group's bombs
    # right after its normal run, so each bomb is measured against its own command's peak
    groups = [(["predict", GOOD, DIGIT], "predict"),
              (["evaluate", GOOD, "--device", "cpu", "--limit", "1000"], "evaluate"),
              (["train", "--epochs", "1", "--limit", "256", "--validation", "0", "--device", "cpu",
                "--out", str(folder / "normal.h5")], "train")]
    report: dict = {"groups": {}, "bombs": {}}
    for normal, command in groups:
        code, _ = run(normal)
        assert code == 0, normal
        baseline = peak_mb()
        for name, argv in bombs.items():
            if argv[0] == command:
                report["bombs"][name] = run(argv)
        report["groups"][command] = {"baseline_mb": baseline, "peak_mb": peak_mb()}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
