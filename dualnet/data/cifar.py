"""CIFAR-10's binary distribution read without unpickling anything, and converted once to HDF5.

`cifar-10-binary.tar.gz` holds `cifar-10-batches-bin/data_batch_1.bin` .. `data_batch_5.bin` (training)
and `test_batch.bin`, each 10,000 records of 3,073 bytes: the label (0..9), then 1,024 red, 1,024
green and 1,024 blue pixel values of a 32x32 image, row by row. Only those six members are read
(never extracted to disk: no path in the archive is ever written); each must have exactly the records'
size. The pickled `batches.meta` and the Python distribution are never opened.
"""

from __future__ import annotations

import json
import pathlib
import tarfile

import numpy as np

from ..errors import DataError
from .atomic import written_atomically
from .locations import cache_root

__all__ = ["RECORD_BYTES", "cifar10_h5", "read_cifar_binary"]

RECORD_BYTES = 1 + 3 * 32 * 32
RECORDS_PER_BATCH = 10_000
_FOLDER = "cifar-10-batches-bin"
TRAIN_MEMBERS = tuple(f"{_FOLDER}/data_batch_{i}.bin" for i in range(1, 6))
TEST_MEMBERS = (f"{_FOLDER}/test_batch.bin",)


def records(raw: bytes, where: str, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels int64 (N,)) of the records in `raw`."""
    if len(raw) % RECORD_BYTES:
        raise DataError(f"{where}: {len(raw):,} bytes is not a whole number of {RECORD_BYTES}-byte records")
    table = np.frombuffer(raw, np.uint8).reshape(-1, RECORD_BYTES)
    labels = table[:, 0].astype(np.int64)
    if labels.size and labels.max() >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DataError(f"{where}: record {bad} has label {labels[bad]}, outside 0..{num_classes - 1}")
    return table[:, 1:].reshape(-1, 3, 32, 32), labels


def read_cifar_binary(archive: pathlib.Path, records_per_batch: int | None = None) -> dict:
    """{"train": (images, labels), "test": (images, labels)} from the binary archive (records_per_batch:
    the records each member must hold, default RECORDS_PER_BATCH)."""
    records_per_batch = records_per_batch or RECORDS_PER_BATCH
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "test": []}
    wanted = {m: ("train" if m in TRAIN_MEMBERS else "test") for m in TRAIN_MEMBERS + TEST_MEMBERS}
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name not in wanted:
                    continue
                if not member.isreg() or member.size != records_per_batch * RECORD_BYTES:
                    raise DataError(f"{archive}: member {member.name} is not a file of {records_per_batch:,} records "
                                    f"({member.size:,} bytes)")
                f = tar.extractfile(member)
                if f is None:  # not reached for a regular member; keeps the type checker informed
                    raise DataError(f"{archive}: member {member.name} cannot be read")
                found[member.name] = records(f.read(), f"{archive}:{member.name}")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{archive}: damaged archive ({type(exc).__name__}: {exc})") from None
    missing = [m for m in wanted if m not in found]
    if missing:
        raise DataError(f"{archive}: no member {missing[0]}; expected the binary version (cifar-10-binary.tar.gz)")
    for name in TRAIN_MEMBERS + TEST_MEMBERS:
        parts[wanted[name]].append(found[name])
    return {k: (np.concatenate([p[0] for p in v]), np.concatenate([p[1] for p in v])) for k, v in parts.items()}


def cifar10_h5(archive: pathlib.Path, spec, records_per_batch: int | None = None) -> pathlib.Path:
    """The HDF5 conversion of the (verified) archive in the user cache, made once: train/ and test/
    groups of uint8 (N, 3, 32, 32) images and int64 labels, with class_names. Reused while its
    recorded source checksum matches the archive's spec."""
    import h5py

    out = cache_root() / spec.name / f"{spec.name}.h5"
    key = spec.files[0].md5
    if out.is_file():
        try:
            with h5py.File(out, "r") as f:
                if f.attrs.get("cache_key") == key:
                    return out
        except OSError:
            pass
    data = read_cifar_binary(archive, records_per_batch)
    with written_atomically(out) as tmp, h5py.File(tmp, "w") as f:
        for split, (images, labels) in data.items():
            f.create_dataset(f"{split}/images", data=images, chunks=(min(len(images), 256), 3, 32, 32))
            f.create_dataset(f"{split}/labels", data=labels)
        f.attrs["class_names"] = json.dumps(list(spec.class_names))
        f.attrs["num_classes"] = len(spec.class_names)
        f.attrs["source"] = str(archive)
        f.attrs["cache_key"] = key
    return out
