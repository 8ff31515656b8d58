"""How much an HDF5 dataset may make a reader allocate, judged from the file's metadata alone.

Shared by the dataset reader (dualnet.data.hdf5) and the checkpoint reader (dualnet.checkpoint.reader).
"""

from __future__ import annotations

import math

from ..errors import DataError
from .idx import MAX_PAYLOAD_BYTES

# An HDF5 dataset may declare far more data than its file stores (unwritten chunks read back as
# the fill value), so a few kilobytes could make a reader allocate gigabytes. Real data, even
# deflated zeros (~1032:1 at best), stays within this ratio of its stored bytes.
_MAX_STORED_RATIO = 1100
_SMALL_BYTES = 1 << 20


def h5_check_size(ds, where, rows: int | None = None) -> None:
    """Raise DataError unless reading `rows` records (default: all) of HDF5 dataset `ds` is safe.

    Checked from the file's metadata alone: the bytes to read must stay within MAX_PAYLOAD_BYTES,
    and the dataset must not declare far more data than the file stores for it.
    """
    per_row = math.prod(ds.shape[1:]) * ds.dtype.itemsize
    wanted = (len(ds) if rows is None else rows) * per_row if ds.ndim else ds.dtype.itemsize
    if wanted > MAX_PAYLOAD_BYTES:
        raise DataError(f"{where}: reading shape {ds.shape} of {ds.dtype} needs {wanted:,} bytes, "
                        f"more than the {MAX_PAYLOAD_BYTES:,} accepted; the file is corrupt or too large")
    h5_check_stored(ds, where)


def h5_check_stored(ds, where) -> None:
    """Raise DataError when HDF5 dataset `ds` declares far more data than its file stores for it
    (unwritten chunks read back as the fill value: a damaged or never fully written file)."""
    declared, stored = ds.size * ds.dtype.itemsize, ds.id.get_storage_size()
    if declared > _SMALL_BYTES and declared > _MAX_STORED_RATIO * stored:
        raise DataError(f"{where}: declares shape {ds.shape} ({declared:,} bytes) but the file stores "
                        f"only {stored:,} bytes for it; the file is damaged or was never fully written")


# Reading images costs their bytes plus a float32 copy. Real image data deflates 2-10:1 (MNIST's
# gzip files 5:1); a working set this many times the bytes a file stores only comes from a
# decompression bomb, refused from the metadata before anything is inflated. Small sets pass.
MAX_WORKING_RATIO = 200
_SMALL_WORKING_BYTES = 64 << 20


def check_working_set(elements: int, itemsize: int, stored: int, where) -> None:
    """Raise DataError unless reading `elements` values of `itemsize` bytes, stored in `stored`
    bytes, and converting them to float32, stays within MAX_WORKING_RATIO of what is stored."""
    working = elements * (itemsize + 4)
    if working > _SMALL_WORKING_BYTES and working > MAX_WORKING_RATIO * max(stored, 1):
        raise DataError(f"{where}: reading it needs {working:,} bytes of memory (its values and their float32 "
                        f"copy) from {stored:,} stored bytes, more than {MAX_WORKING_RATIO}:1; refused as a "
                        "decompression bomb")


def h5_credible_size(ds) -> int:
    """How many of the elements `ds` declares its file can really hold (unwritten chunks hold none)."""
    limit = (_MAX_STORED_RATIO * ds.id.get_storage_size() + _SMALL_BYTES) // max(1, ds.dtype.itemsize)
    return min(ds.size, limit)
