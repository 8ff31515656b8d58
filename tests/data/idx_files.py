"""IDX files forged for the data tests: any array, or a malformed header (shared by test_idx, test_sources)."""

import gzip
import struct

import numpy as np

TYPE_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(array, dims=None, code=None):
    """IDX encoding of array; dims/code override the header to forge malformed files."""
    array = np.asarray(array)
    code = TYPE_CODES[array.dtype.str[1:]] if code is None else code
    dims = array.shape if dims is None else dims
    header = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, payload, compress=False):
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def idx_folder(folder, train_images, train_labels, test=None, dotted=False, compress=True):
    folder.mkdir(exist_ok=True)
    sep = "." if dotted else "-"
    parts = [("train", train_images, train_labels)] + ([("t10k", *test)] if test else [])
    for prefix, images, labels in parts:
        rank = f"idx{np.ndim(images)}"
        suffix = ".gz" if compress else ""
        write(folder / f"{prefix}-images{sep}{rank}-ubyte{suffix}", idx_bytes(images), compress)
        write(folder / f"{prefix}-labels{sep}idx1-ubyte{suffix}", idx_bytes(labels), compress)
    return folder
