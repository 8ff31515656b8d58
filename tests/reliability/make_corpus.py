"""Write tests/reliability/corpus/: small bad input files, each named for what is wrong with it.

    python tests/reliability/make_corpus.py

The files are committed together with this script; the tests read them and never regenerate
them (so that a change to a writer cannot quietly change what the readers are tested on).
Rerunning gives equivalent files (HDF5 and checkpoints carry creation times, so not always
identical bytes). Every file stays well under 100 KB: models are tiny, images mostly blank.

Layout:
    good/                 valid files the bad ones are made from (a resumable checkpoint, a digit)
    data/idx-*/           IDX folders (train-* and t10k-* files) with one defect in both parts
    data/h5-*.h5          HDF5 data files (groups train and test) with one defect
    ckpt/*.h5             checkpoints with one defect
    images/*              images for `dualnet predict` with one defect
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
import sys
import zlib
from pathlib import Path

import h5py
import numpy as np

import dualnet as dn
from dualnet import checkpoint
from dualnet.layers import Flatten, Linear

ROOT = Path(__file__).resolve().parent / "corpus"
MAX_BYTES = 100_000
N = 20  # records per data split

# --- valid building blocks --------------------------------------------------------------------


def digits(n: int = N) -> tuple[np.ndarray, np.ndarray]:
    """n blank 28x28 uint8 images, each with a bright square somewhere, and labels 0..9."""
    images = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        y, x = 4 + (i * 7) % 16, 4 + (i * 3) % 16
        images[i, y:y + 8, x:x + 8] = 255
    return images, (np.arange(n) % 10).astype(np.uint8)


def tiny_model(out: int = 10, channels: int = 1) -> dn.Sequential:
    """Flatten + Linear(784, out): the smallest model `dualnet predict/evaluate` accept."""
    model = dn.Sequential(Flatten(), Linear(channels * 784, out, seed=0), input_shape=(channels, 28, 28))
    for p in model.parameters():  # small, compressible weights keep the files small
        p.data = np.round(p.data * 16) / 16
    return model


TRAIN_CONFIG = dict(model="mlp", data="mnist", epochs=2, batch_size=8, lr=0.01, optimizer="momentum",
                    momentum=0.9, weight_decay=0.0, schedule="none", augment_shift=0, seed=0, limit=16,
                    clip_grad=None, validation=10000)


def train_state(**change) -> dict:
    state = dict(seed=0, epoch=2, step=0, global_step=4, loss_sum=0.0, correct=0, seen=0, seconds=0.0,
                 base_lr=0.01, history=[{"epoch": 1, "train_loss": 2.3}, {"epoch": 2, "train_loss": 2.2}])
    state.update(change)
    return state


def save_checkpoint(path: Path, model=None, train_config=TRAIN_CONFIG, state=None) -> Path:
    """A checkpoint as `dualnet train` writes it (resumable), of `model` (default tiny_model())."""
    model = model or tiny_model()
    opt = dn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for p in model.parameters():
        p.state["velocity"] = p.data * 0
    opt.steps = 4
    extra = {} if train_config is None else {"train_config": train_config}
    rng = None if train_config is None else {"train_state": state or train_state(), "best_acc": 0.1}
    path.parent.mkdir(parents=True, exist_ok=True)
    return checkpoint.save(model, path, optimizer=opt, history=[{"epoch": 1, "train_loss": 2.3}, {"epoch": 2, "train_loss": 2.2}], rng_state=rng,
                           **extra)


def idx_bytes(array, dims=None, code=None) -> bytes:
    """IDX encoding of array; dims and code override the header to forge a malformed file."""
    array = np.asarray(array)
    codes = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}
    code = codes[array.dtype.str[1:]] if code is None else code
    dims = array.shape if dims is None else dims
    return (bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
            + array.astype(array.dtype.newbyteorder(">")).tobytes())


def gz(payload: bytes) -> bytes:
    return gzip.compress(payload, mtime=0)


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def png(gray: np.ndarray, interlace: int = 0, filter_type: int = 0, width=None, height=None, idat=None) -> bytes:
    """8-bit grayscale PNG of gray (H, W) uint8; the keywords forge malformed files."""
    h, w = gray.shape
    raw = b"".join(bytes([filter_type]) + row.tobytes() for row in gray)
    header = struct.pack(">IIBBBBB", width or w, height or h, 8, 0, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", zlib.compress(raw) if idat is None else idat) + png_chunk(b"IEND", b""))


def write(rel: str, payload: bytes) -> Path:
    path = ROOT / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path


# --- IDX folders ------------------------------------------------------------------------------

IMAGES, LABELS = digits()


def idx_dir(name: str, images=None, labels=None, compress=True, omit=()) -> None:
    """data/<name>/ with train and t10k parts; `images`/`labels` are bytes replacing both parts'
    files (the same defect in both, so train and evaluate both meet it)."""
    parts = {"images-idx3": idx_bytes(IMAGES) if images is None else images,
             "labels-idx1": idx_bytes(LABELS) if labels is None else labels}
    for prefix in ("train", "t10k"):
        for kind, payload in parts.items():
            if kind.split("-")[0] in omit:
                continue
            gzipped = compress or (images is None and kind.startswith("images")) or \
                (labels is None and kind.startswith("labels"))
            fname = f"{prefix}-{kind}-ubyte" + (".gz" if gzipped else "")
            write(f"data/{name}/{fname}", gz(payload) if gzipped else payload)


def make_idx() -> None:
    good = idx_bytes(IMAGES)
    idx_dir("idx-wrong-magic", images=b"\x08\x03\x00\x00" + good[4:])
    idx_dir("idx-unknown-type-code", images=bytes([0, 0, 0x0A]) + good[3:])
    idx_dir("idx-zero-dimensions", images=bytes([0, 0, 8, 0]))
    idx_dir("idx-truncated-header", images=good[:10])
    idx_dir("idx-truncated-payload-raw", images=good[:-100], compress=False)
    idx_dir("idx-truncated-payload-gz", images=good[:-100])
    idx_dir("idx-trailing-bytes-raw", images=good + b"\x00" * 7, compress=False)
    idx_dir("idx-header-claims-terabytes", images=idx_bytes(IMAGES, dims=(60000, 100000, 100000)))
    # 1.9 GB of images promised by a file of a few hundred bytes (with as many real labels, so that
    # the images are read): must not be allocated
    idx_dir("idx-header-claims-2gb-gz", images=idx_bytes(IMAGES, dims=(2400000, 28, 28)),
            labels=idx_bytes(np.zeros(2400000, np.uint8)))
    idx_dir("idx-dims-disagree-with-size-raw", images=idx_bytes(IMAGES, dims=(N + 5, 28, 28)),
            labels=idx_bytes(np.zeros(N + 5, np.uint8)), compress=False)
    idx_dir("idx-label-count-mismatch", labels=idx_bytes(LABELS[:-1]))
    idx_dir("idx-labels-two-dimensional", labels=idx_bytes(LABELS.reshape(N, 1)))
    idx_dir("idx-images-one-dimensional", images=idx_bytes(IMAGES.reshape(-1)))
    idx_dir("idx-empty-images", images=idx_bytes(np.zeros((N, 0, 28), np.uint8)))
    flipped = bytearray(gz(good))
    flipped[30:60] = bytes(b ^ 0x5A for b in flipped[30:60])
    idx_dir("idx-corrupt-gzip-stream", images=bytes(flipped), compress=False)
    idx_dir("idx-missing-labels-file", omit=("labels",))
    idx_dir("idx-float-pixels-out-of-range", images=idx_bytes(IMAGES.astype(">f4")))
    nan = (IMAGES / 255).astype(">f4")
    nan[3, 5, 5] = np.nan
    idx_dir("idx-float-pixels-nan", images=idx_bytes(nan))
    idx_dir("idx-negative-labels", labels=idx_bytes(np.where(LABELS == 4, -1, LABELS.astype("i1"))))
    idx_dir("idx-float-labels", labels=idx_bytes(LABELS.astype(">f4")))
    idx_dir("idx-labels-beyond-ten-classes", labels=idx_bytes((np.arange(N) % 15).astype(np.uint8)))
    idx_dir("idx-images-32x32", images=idx_bytes(np.zeros((N, 32, 32), np.uint8)))


# --- HDF5 data files --------------------------------------------------------------------------


def h5_data(name: str, images=None, labels=None, flat=False, attrs=None, edit=None) -> None:
    """data/<name>.h5 with groups train and test (or top-level datasets if flat)."""
    path = ROOT / "data" / f"{name}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    images = IMAGES if images is None else images
    labels = LABELS if labels is None else labels
    with h5py.File(path, "w", track_order=True) as f:
        for group in ([f] if flat else [f.create_group("train"), f.create_group("test")]):
            for key, value in (("images", images), ("labels", labels)):
                if value is not False:
                    kwargs = dict(compression="gzip") if np.asarray(value).size > 1 else {}
                    group.create_dataset(key, data=value, **kwargs)
        f.attrs.update(attrs or {})
        if edit:
            edit(f)


def make_h5_data() -> None:
    h5_data("h5-missing-images", images=False)
    h5_data("h5-missing-labels", labels=False)
    h5_data("h5-images-int32", images=IMAGES.astype(np.int32))
    h5_data("h5-images-rank-2", images=IMAGES.reshape(N, -1))
    nan = (IMAGES / 255).astype(np.float32)
    nan[2, 3, 4] = np.nan
    h5_data("h5-pixels-nan", images=nan)
    inf = (IMAGES / 255).astype(np.float32)
    inf[7, 0, 0] = np.inf
    h5_data("h5-pixels-inf", images=inf)
    h5_data("h5-float-pixels-0-to-255", images=IMAGES.astype(np.float32))
    h5_data("h5-labels-negative", labels=np.where(LABELS == 3, -2, LABELS.astype(np.int64)))
    h5_data("h5-labels-float", labels=LABELS.astype(np.float64))
    h5_data("h5-labels-strings", labels=np.array([b"seven"] * N))
    h5_data("h5-length-mismatch", labels=LABELS[:-2])
    h5_data("h5-num-classes-attribute-too-small", attrs={"num_classes": 3})
    h5_data("h5-num-classes-attribute-not-int", attrs={"num_classes": "ten"})
    h5_data("h5-labels-beyond-ten-classes", labels=(np.arange(N) % 12).astype(np.int64))
    h5_data("h5-images-three-channels", images=np.zeros((N, 3, 28, 28), np.uint8))

    def huge_unwritten(f):  # a few KB that declare 78 GB: nothing is stored, all reads as fill
        for g in ("train", "test"):
            del f[g]["images"], f[g]["labels"]
            f[g].create_dataset("images", shape=(10**8, 28, 28), dtype=np.uint8, chunks=(64, 28, 28))
            f[g].create_dataset("labels", shape=(10**8,), dtype=np.int64, chunks=(4096,))
    h5_data("h5-huge-unwritten-datasets", edit=huge_unwritten)

    def images_group(f):
        for g in ("train", "test"):
            del f[g]["images"]
            f[g].create_group("images")
    h5_data("h5-images-is-a-group", edit=images_group)
    h5_data("h5-no-test-group", flat=True)
    good = ROOT / "data" / "h5-no-test-group.h5"
    write("data/h5-truncated.h5", good.read_bytes()[:1500])
    write("data/h5-not-hdf5.h5", b"images,labels\n0,7\n")


# --- checkpoints ------------------------------------------------------------------------------


def ckpt(name: str, edit=None, **kwargs) -> Path:
    path = save_checkpoint(ROOT / "ckpt" / f"{name}.h5", **kwargs)
    if edit:
        with h5py.File(path, "r+") as f:
            edit(f)
    return path


def config_edit(change):
    def edit(f):
        config = json.loads(f["model"].attrs["config"])
        change(config)
        f["model"].attrs["config"] = json.dumps(config)
    return edit


def metadata_edit(change):
    def edit(f):
        metadata = json.loads(f.attrs["metadata"])
        change(metadata)
        f.attrs["metadata"] = json.dumps(metadata)
    return edit


def replace(name, data=None, **kwargs):
    def edit(f):
        del f[name]
        f.create_dataset(name, data=data, **kwargs)
    return edit


P = "model/parameters/"


def make_checkpoints() -> None:
    good = save_checkpoint(ROOT / "good" / "tiny.h5")
    write("ckpt/not-hdf5.h5", b"this is a text file, not a checkpoint\n")
    write("ckpt/empty-file.h5", b"")
    write("ckpt/truncated.h5", good.read_bytes()[:2000])
    ckpt("missing-model-group", lambda f: f.__delitem__("model"))
    ckpt("missing-parameters-group", lambda f: f.__delitem__("model/parameters"))
    ckpt("missing-parameter", lambda f: f.__delitem__(P + "fc1.bias"))
    ckpt("extra-parameter", lambda f: f.create_dataset(P + "fc7.weight", data=np.zeros(3, np.float32)))
    ckpt("unknown-layer-type", config_edit(lambda c: c["layers"][1].update(type="Conv3d")))
    ckpt("negative-layer-size", config_edit(lambda c: c["layers"][1]["config"].update(out_features=-10)))
    ckpt("parameter-shape-mismatch", replace(P + "fc1.bias", np.zeros(7, np.float32)))
    ckpt("parameter-dtype-mismatch", replace(P + "fc1.bias", np.zeros(10, np.float64)))
    ckpt("parameter-nan", replace(P + "fc1.bias", np.full(10, np.nan, np.float32)))
    ckpt("newer-format-version", lambda f: f.attrs.__setitem__("format_version", 99))
    ckpt("unsupported-dtype-attribute", lambda f: f.attrs.__setitem__("dtype", "int8"))
    ckpt("config-not-json", lambda f: f["model"].attrs.__setitem__("config", "{layers: oops"))

    def huge_layer(f):  # 3.6e9 parameters declared, none stored
        config_edit(lambda c: c["layers"][1]["config"].update(in_features=60000, out_features=60000))(f)
        for name, shape in (("fc1.weight", (60000, 60000)), ("fc1.bias", (60000,))):
            del f[P + name]
            f.create_dataset(P + name, shape=shape, dtype=np.float32, chunks=(64,) * len(shape))
    ckpt("huge-layer-unwritten-parameters", huge_layer)
    ckpt("input-shape-huge", config_edit(lambda c: c.update(input_shape=[1, 100000, 100000])))
    ckpt("input-shape-not-a-list", config_edit(lambda c: c.update(input_shape="28x28")))
    ckpt("input-shape-disagrees-with-layers", config_edit(lambda c: c.update(input_shape=[1, 32, 32])))
    ckpt("three-channel-model", model=tiny_model(channels=3))
    ckpt("five-class-model", model=tiny_model(out=5))
    ckpt("unknown-optimizer-type", lambda f: f["optimizer"].attrs.__setitem__("type", "Lion"))
    ckpt("optimizer-negative-lr", lambda f: f["optimizer"].attrs.__setitem__("hyper", '{"lr": -1.0}'))
    ckpt("optimizer-buffer-shape", replace("optimizer/buffers/1/velocity", np.zeros(3, np.float32)))
    ckpt("history-length-mismatch", replace("history/epoch", np.arange(5)))

    def huge_history(f):
        del f["history/epoch"]
        f["history"].create_dataset("epoch", shape=(10**8,), dtype=np.int64, chunks=(4096,))
    ckpt("history-huge-unwritten", huge_history)
    ckpt("not-from-train", train_config=None)
    ckpt("train-config-incomplete", metadata_edit(lambda m: m.update(train_config={"model": "mlp"})))
    ckpt("train-config-negative-batch-size",
         metadata_edit(lambda m: m["train_config"].update(batch_size=-8)))
    ckpt("train-config-unknown-optimizer",
         metadata_edit(lambda m: m["train_config"].update(optimizer="rmsprop")))
    ckpt("train-state-epoch-not-int", state=train_state(epoch="two"))
    ckpt("train-state-step-beyond-epoch", state=train_state(epoch=1, step=10**6, seen=8))
    shutil.copy(ROOT / "data" / "h5-no-test-group.h5", ROOT / "ckpt" / "data-file-not-checkpoint.h5")


# --- images -----------------------------------------------------------------------------------


def make_images() -> None:
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255  # a "1"
    write("good/digit.png", png(digit))
    good = png(digit)
    write("images/empty-file.png", b"")
    write("images/text-renamed.png", b"a text file renamed to .png\n")
    write("images/truncated.png", good[:60])
    bad_crc = bytearray(good)
    bad_crc[20] ^= 0xFF  # inside IHDR's width
    write("images/bad-crc.png", bytes(bad_crc))
    write("images/huge-dimensions.png", png(digit, width=100000, height=100000))
    write("images/interlaced.png", png(digit, interlace=1))
    write("images/bad-filter-type.png", png(digit, filter_type=9))
    # a zip bomb: 4 MB of zeros in a few KB, for an image that needs 812 bytes
    write("images/zip-bomb.png", png(digit, idat=zlib.compress(bytes(4 << 20), 9)))
    write("images/photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64))
    write("images/animation.gif", b"GIF89a" + bytes(64))
    write("images/truncated.pgm", b"P5\n28 28\n255\n" + bytes(100))
    write("images/maxval-zero.pgm", b"P5\n28 28\n0\n" + bytes(28 * 28))
    write("images/zero-width.pgm", b"P5\n0 28\n255\n")
    from make_corpus_pillow import make_pillow_images  # it imports this module's helpers

    make_pillow_images(digit)
    for name, array in (("rgb-three-channels.npy", np.zeros((28, 28, 3), np.uint8)),
                        ("nan-pixels.npy", np.full((28, 28), np.nan, np.float32)),
                        ("int64-pixels.npy", np.zeros((28, 28), np.int64)),
                        ("object-array.npy", np.array([[None, 1]], dtype=object))):
        path = ROOT / "images" / name
        np.save(path, array, allow_pickle=True)


def make_round_two() -> None:
    """Silent wrong results and refusals of valid input (families 7 to 9)."""
    def rename(i, name):
        return config_edit(lambda c: c["layers"][i].update(name=name))
    ckpt("duplicate-layer-names", rename(0, "fc1"))
    ckpt("layer-name-not-a-string", rename(1, 7))
    for dtype in (np.float64, np.float16):
        model = tiny_model()
        model.astype(dtype)
        save_checkpoint(ROOT / "good" / f"tiny-{np.dtype(dtype).name}.h5", model=model)

    def empty_test(f):
        del f["test/images"], f["test/labels"]
        f["test"].create_dataset("images", shape=(0, 28, 28), dtype=np.uint8)
        f["test"].create_dataset("labels", shape=(0,), dtype=np.int64)
    h5_data("h5-empty-test-split", edit=empty_test)
    h5_data("h5-five-images", images=IMAGES[:5], labels=LABELS[:5], flat=True)


def main() -> int:
    if ROOT.exists():
        shutil.rmtree(ROOT)
    dn.use_device("cpu")
    make_idx()
    make_h5_data()
    make_checkpoints()
    make_images()
    make_round_two()
    # these import this module's helpers
    from make_corpus_buffers import make_buffers
    from make_corpus_foreign import make_foreign
    from make_corpus_validated import make_sizes, make_validated

    make_foreign()
    make_buffers()
    make_validated()
    make_sizes()
    too_big = [p for p in ROOT.rglob("*") if p.is_file() and p.stat().st_size >= MAX_BYTES]
    for p in too_big:
        print(f"too big: {p} ({p.stat().st_size} bytes)", file=sys.stderr)
    count = sum(1 for p in ROOT.rglob("*") if p.is_file())
    print(f"wrote {count} files under {ROOT}")
    return 1 if too_big else 0


if __name__ == "__main__":
    sys.exit(main())
