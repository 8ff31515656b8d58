"""Fuzzing every loader of untrusted files: IDX (raw and gzip), HDF5 data files, checkpoints and
images (PNG, PGM, .npy). Valid files are mutated (truncated, bytes flipped or set, bytes inserted
or deleted, header fields changed, datasets swapped, retyped or deleted, attributes replaced) and
each loader must either return a valid result or raise the dualnet error of its kind (DataError,
CheckpointError), never anything else, and never allocate more than BOUND while doing so
(measured with tracemalloc, which sees NumPy's buffers).
"""

from __future__ import annotations

import gzip
import io
import json
import pathlib
import struct
import tempfile
import tracemalloc
import zlib

import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dualnet as dn
from dualnet import checkpoint, data
from dualnet.data.idx import read_idx
from dualnet.data.images import read_image
from dualnet.errors import CheckpointError, DataError
from dualnet.layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU

BOUND = 64 * 2**20  # bytes; every base file here is a few kilobytes
CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"


def bounded(load, path):
    """load(path) under tracemalloc: its result, or the DataError/CheckpointError it raised.

    Any other exception propagates (and fails the test); so does a peak above BOUND."""
    tracemalloc.start()
    try:
        try:
            result = load(path)
        except (DataError, CheckpointError) as exc:
            result = exc
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < BOUND, f"{load.__name__} allocated {peak:,} bytes for a {path.stat().st_size:,}-byte file"
    return result


@st.composite
def mutated(draw, base: bytes, hot: int = 64) -> bytes:
    """base with 1 to 6 random edits; half of the positions fall in the first `hot` bytes (headers)."""
    buf = bytearray(base)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
        limit = max(len(buf) - 1, 0)
        pos = draw(st.one_of(st.integers(0, min(hot, limit)), st.integers(0, limit)))
        if op == "flip" and buf:
            buf[pos] ^= draw(st.integers(1, 255))
        elif op == "set" and buf:
            buf[pos] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))]))
        elif op == "truncate":
            del buf[pos:]
        elif op == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del buf[pos:pos + draw(st.integers(1, 16))]
    return bytes(buf)


def written(payload: bytes, name: str):
    """A context manager giving a path holding payload, in a fresh temporary folder."""
    class _Ctx:
        def __enter__(self):
            self.tmp = tempfile.TemporaryDirectory()
            path = pathlib.Path(self.tmp.name) / name
            path.write_bytes(payload)
            return path

        def __exit__(self, *exc):
            self.tmp.cleanup()
    return _Ctx()


# --- IDX --------------------------------------------------------------------------------------

RNG = np.random.default_rng(7)
IMAGES = RNG.integers(0, 256, (6, 5, 4), dtype=np.uint8)
LABELS = (np.arange(6) % 3).astype(np.uint8)


def idx_bytes(array, dims=None, code=0x08) -> bytes:
    dims = array.shape if dims is None else dims
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + array.tobytes()


def check_idx_result(result) -> None:
    if not isinstance(result, DataError):
        assert isinstance(result, np.ndarray) and result.ndim >= 1 and result.dtype.isnative


@given(mutated(idx_bytes(IMAGES)), st.booleans())
def test_idx_mutated_bytes(payload, compress):
    """Raw files are mutated as they are; gzip files hold a mutated payload (header fields included)."""
    with written(gzip.compress(payload, mtime=0) if compress else payload, "x-idx3-ubyte") as path:
        check_idx_result(bounded(read_idx, path))


@given(mutated(gzip.compress(idx_bytes(IMAGES), mtime=0), hot=24))
def test_idx_mutated_gzip_stream(payload):
    with written(payload, "x-idx3-ubyte.gz") as path:
        check_idx_result(bounded(read_idx, path))


@given(code=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0x0A, 0xFF]),
       dims=st.lists(st.one_of(st.integers(0, 8), st.integers(0, 2**32 - 1)), min_size=0, max_size=5),
       payload=st.integers(0, 400), compress=st.booleans())
def test_idx_forged_header_fields(code, dims, payload, compress):
    """Any type code and any dimensions, over a payload of any size: never a huge allocation."""
    raw = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + bytes(range(256)) * 2
    raw = raw[:4 + 4 * len(dims) + payload]
    with written(gzip.compress(raw, mtime=0) if compress else raw, "x-idx3-ubyte") as path:
        check_idx_result(bounded(read_idx, path))


@given(which=st.sampled_from(["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]),
       data_=st.data(), split=st.sampled_from(["train", "val", "test"]))
def test_idx_folder_with_one_mutated_file(which, data_, split):
    files = {"train-images-idx3-ubyte": idx_bytes(IMAGES), "train-labels-idx1-ubyte": idx_bytes(LABELS),
             "t10k-images-idx3-ubyte": idx_bytes(IMAGES), "t10k-labels-idx1-ubyte": idx_bytes(LABELS)}
    files[which] = data_.draw(mutated(files[which], hot=24))
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        for name, payload in files.items():
            (folder / (name + ".gz")).write_bytes(gzip.compress(payload, mtime=0))
        result = bounded(lambda p: data.load(p, split, validation=2), folder)
    if not isinstance(result, DataError):
        assert isinstance(result, data.Dataset) and result.images.dtype == np.float32
        assert result.labels.min(initial=0) >= 0 and result.labels.max(initial=0) < result.num_classes


# --- HDF5 data files --------------------------------------------------------------------------


def h5_data_bytes(edit=None) -> bytes:
    """A valid HDF5 data file (groups train and test), optionally edited with h5py."""
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "d.h5"
        with h5py.File(path, "w") as f:
            for group in ("train", "test"):
                f.create_dataset(f"{group}/images", data=IMAGES)
                f.create_dataset(f"{group}/labels", data=LABELS.astype(np.int64))
            f.attrs["num_classes"] = 3
            if edit:
                edit(f)
        return path.read_bytes()


H5_DATA = h5_data_bytes()


def check_dataset(result) -> None:
    if not isinstance(result, DataError):
        assert isinstance(result, data.Dataset) and result.images.ndim == 4
        assert np.isfinite(result.images).all() and result.images.min(initial=0) >= 0
        assert result.labels.min(initial=0) >= 0 and result.labels.max(initial=0) < result.num_classes


@given(mutated(H5_DATA, hot=2048), st.sampled_from(["train", "val", "test", "all-train"]))
def test_hdf5_data_mutated_bytes(payload, split):
    with written(payload, "d.h5") as path:
        check_dataset(bounded(lambda p: data.load(p, split, validation=2), path))


ARRAYS = st.one_of(
    st.builds(lambda shape, dtype: np.zeros(shape, dtype),
              st.lists(st.integers(0, 7), min_size=0, max_size=4).map(tuple),
              st.sampled_from(["u1", "i1", "i8", "u8", "f2", "f4", "f8", "S3", "?"])),
    st.just(np.full((6, 5, 4), np.nan, np.float32)), st.just(np.full(6, -5, np.int64)),
    st.just(np.full(6, 2**62, np.uint64)), st.just(np.array(b"text")))


@given(edits=st.lists(st.tuples(st.sampled_from(["swap", "delete", "replace", "group", "attr"]),
                                st.sampled_from(["train/images", "train/labels", "test/images", "test/labels"]),
                                ARRAYS, st.sampled_from([-1, 0, 2, 10**12, "x", 2.5])),
                      min_size=1, max_size=3),
       split=st.sampled_from(["train", "test", "all-train"]))
def test_hdf5_data_structural_edits(edits, split):
    """Datasets swapped, deleted, replaced by other shapes and dtypes, turned into groups; a
    num_classes attribute of any value."""
    def edit(f):
        for op, name, array, attr in edits:
            if op == "swap" and name in f:
                other = name.replace("images", "tmp").replace("labels", "images").replace("tmp", "labels")
                if other in f:
                    f.move(name, name + "_"), f.move(other, name), f.move(name + "_", other)
            elif op in ("delete", "replace", "group") and name in f:
                del f[name]
                if op == "replace":
                    f.create_dataset(name, data=array)
                elif op == "group":
                    f.create_group(name)
            elif op == "attr":
                f.attrs["num_classes"] = attr
    with written(h5_data_bytes(edit), "d.h5") as path:
        check_dataset(bounded(lambda p: data.load(p, split, validation=2), path))


# --- checkpoints ------------------------------------------------------------------------------


def small_model() -> dn.Sequential:
    return dn.Sequential(Conv2d(1, 2, 3, seed=1), ReLU(), MaxPool2d(2), Flatten(), Dropout(0.25, seed=2),
                         Linear(8, 3, seed=3), input_shape=(1, 6, 6))


def checkpoint_bytes(edit=None) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "c.h5"
        model = small_model()
        opt = dn.optim.Adam(model.parameters(), lr=0.01)
        for p in model.parameters():
            p.grad[...] = 0.5
        opt.step()
        checkpoint.save(model, path, optimizer=opt, history=[{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}],
                        rng_state={"train_state": {"epoch": 2}}, note="fuzz")
        if edit:
            with h5py.File(path, "r+") as f:
                edit(f)
        return path.read_bytes()


CKPT = checkpoint_bytes()


def check_checkpoint(result) -> None:
    if not isinstance(result, CheckpointError):
        assert isinstance(result, checkpoint.Checkpoint)
        for name, p in result.model.named_parameters():
            assert np.isfinite(p.data).all(), name
        result.model.eval()
        shape = result.model.input_shape
        if shape is not None:  # a model that loads runs on its own input shape
            result.model(np.zeros((1, *shape), p.data.dtype))


@given(mutated(CKPT, hot=4096))
def test_checkpoint_mutated_bytes(payload):
    with written(payload, "c.h5") as path:
        check_checkpoint(bounded(checkpoint.read, path))


NODES = ["model", "model/parameters", "model/parameters/conv1.weight", "model/parameters/fc1.bias", "optimizer",
         "optimizer/buffers/0/m", "optimizer/buffers/3/v", "history", "history/loss", "rng"]
ATTRS = [("/", "format_version"), ("/", "dtype"), ("/", "metadata"), ("model", "config"), ("model", "spec"),
         ("optimizer", "type"), ("optimizer", "hyper"), ("optimizer", "steps"), ("history", "keys"),
         ("rng", "dropout"), ("rng", "state")]
VALUES = st.one_of(st.integers(-3, 2**40), st.text(max_size=20), st.sampled_from(
    ['{"layers": []}', '{"layers": [{"type": "Linear", "config": {"in_features": 100000, "out_features": 100000}}]}',
     '{"layers": "x"}', "[]", "null", '{"lr": "fast"}', '{"lr": 1e999}', '["loss", "loss"]', "[1, 2]", '{"input_shape": [0]}']))


@given(st.lists(st.one_of(
    st.tuples(st.just("delete"), st.sampled_from(NODES)),
    st.tuples(st.just("swap"), st.sampled_from(NODES), st.sampled_from(NODES)),
    st.tuples(st.just("replace"), st.sampled_from(NODES), ARRAYS),
    st.tuples(st.just("attr"), st.sampled_from(ATTRS), VALUES),
    st.tuples(st.just("config"), st.sampled_from(["kernel_size", "in_channels", "out_features", "p", "input_shape"]),
              st.one_of(st.integers(-2, 10**7), st.lists(st.integers(-1, 50), max_size=4), st.text(max_size=3)))),
    min_size=1, max_size=3))
def test_checkpoint_structural_edits(edits):
    """Groups and datasets deleted, swapped or replaced; attributes and layer settings of any value."""
    def edit(f):
        for op, *args in edits:
            if op == "delete" and args[0] in f:
                del f[args[0]]
            elif op == "swap" and args[0] in f and args[1] in f and args[0] != args[1] \
                    and not args[1].startswith(args[0] + "/") and not args[0].startswith(args[1] + "/"):
                f.move(args[0], "tmp_swap"), f.move(args[1], args[0]), f.move("tmp_swap", args[1])
            elif op == "replace" and args[0] in f:
                del f[args[0]]
                f.create_dataset(args[0], data=args[1])
            elif op == "attr" and args[0][0] in f:
                f[args[0][0]].attrs[args[0][1]] = args[1]
            elif op == "config" and "model" in f and "config" in f["model"].attrs:
                config = json.loads(f["model"].attrs["config"])
                for layer in config["layers"]:
                    if args[0] in layer["config"]:
                        layer["config"][args[0]] = args[1]
                if args[0] == "input_shape":
                    config["input_shape"] = args[1]
                f["model"].attrs["config"] = json.dumps(config)
    with written(checkpoint_bytes(edit), "c.h5") as path:
        check_checkpoint(bounded(checkpoint.read, path))


# --- images -----------------------------------------------------------------------------------


def png_bytes(gray: np.ndarray) -> bytes:
    def chunk(ctype, body):
        return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))
    h, w = gray.shape
    raw = b"".join(b"\x01" + row.tobytes() for row in gray)  # filter "Sub" on every row (bytes as is)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def npy_bytes(array) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


GRAY = RNG.integers(0, 256, (7, 9), dtype=np.uint8)
IMAGE_FILES = {"x.png": png_bytes(GRAY), "x.pgm": b"P5\n9 7\n255\n" + GRAY.tobytes(),
               "x.ppm": b"P3\n2 2\n255\n" + b" ".join(b"%d" % v for v in range(12)),
               "x.npy": npy_bytes(GRAY), "y.npy": npy_bytes(GRAY.astype(np.float32) / 255)}


@given(st.sampled_from(sorted(IMAGE_FILES)), st.data())
def test_images_mutated_bytes(name, data_):
    payload = data_.draw(mutated(IMAGE_FILES[name], hot=48))
    with written(payload, name) as path:
        result = bounded(read_image, path)
    if not isinstance(result, DataError):
        assert result.dtype == np.float32 and result.ndim == 2 and result.size
        assert np.isfinite(result).all() and result.min() >= 0 and result.max() <= 1


# --- the corpus' hostile files, under the same memory bound -----------------------------------

HOSTILE = [
    ("data/idx-header-claims-2gb-gz/train-images-idx3-ubyte.gz", read_idx, "promises 1881600000 payload bytes"),
    ("data/idx-header-claims-terabytes/train-images-idx3-ubyte.gz", read_idx, "more than the 2147483648 bytes"),
    ("data/h5-huge-unwritten-datasets.h5", lambda p: data.load(p, "test", limit=10), "stores only 0 bytes"),
    ("ckpt/huge-layer-unwritten-parameters.h5", checkpoint.read, "needs 3,600,060,000 parameters"),
    ("ckpt/history-huge-unwritten.h5", checkpoint.read, "stores only 0 bytes"),
    ("ckpt/input-shape-huge.h5", checkpoint.read, "input_shape"),
    ("images/zip-bomb.png", read_image, "image data exceeds"),
    ("images/huge-dimensions.png", read_image, "100000x100000"),
]


@pytest.mark.parametrize("name,load,problem", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_corpus_files_are_refused_within_the_bound(name, load, problem):
    result = bounded(load, CORPUS / name)
    assert isinstance(result, (DataError, CheckpointError)) and problem in str(result)
