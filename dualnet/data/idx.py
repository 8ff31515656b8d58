"""Reading IDX files, the format MNIST ships in.

An IDX file is a 4-byte magic (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the values in C order, big-endian. Files may be gzipped;
gzip is recognised by its leading bytes, not by the file name.

Every check that can be made from the header is made before any payload is allocated, so a
corrupt header that claims terabytes fails at once instead of exhausting memory.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import struct
import zlib

import numpy as np

from ..errors import DataError
from .files import regular_file

__all__ = ["IDX_TYPES", "MAX_PAYLOAD_BYTES", "read_idx", "read_idx_header"]

# Type code (third magic byte) -> dtype as stored on disk.
IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# A header promising more than this is treated as corrupt; MNIST's largest file is 47 MB.
MAX_PAYLOAD_BYTES = 2**31

_GZIP_MAGIC = b"\x1f\x8b"
# Bounded reads keep the transient copy of a gzip stream small next to the output array.
_CHUNK = 1 << 22
# First buffer for a gzip payload whose trailer does not confirm the header's size; it doubles
# as data arrives, so allocation stays within twice what really decompresses.
_FIRST_ALLOCATION = 1 << 20
_MAX_DEFLATE_RATIO = 1032


def read_idx_header(path: str | os.PathLike) -> tuple[np.dtype, tuple[int, ...]]:
    """The (native-endian dtype, shape) an IDX file declares, reading only its header."""
    with _open(path) as (f, _):
        dtype, dims, _, _ = _read_header(f, path)
    return dtype.newbyteorder("="), dims


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read a whole IDX file (raw or gzipped) into a native-endian array of the declared shape.

    Raises DataError naming the file for a wrong magic, an unknown type code, a header claiming
    more than MAX_PAYLOAD_BYTES, a truncated payload, bytes after the payload, or a corrupt
    gzip stream.
    """
    with _open(path) as (f, compressed):
        dtype, dims, header_len, nbytes = _read_header(f, path)
        if not compressed:
            # The file size settles truncation and trailing bytes before allocating anything.
            payload = os.fstat(f.fileno()).st_size - header_len
            if payload != nbytes:
                raise DataError(_size_problem(path, dims, nbytes, payload))
            buf = np.empty(nbytes, dtype=np.uint8)
            got = _read_into(f, memoryview(buf), path)
        else:
            buf, got = _read_gzip_payload(f, path, header_len + nbytes, nbytes)
        if got < nbytes:
            raise DataError(_size_problem(path, dims, nbytes, got))
        if _read_guarded(f, 1, path):
            raise DataError(
                f"{path}: trailing bytes after the {nbytes} payload bytes that the header "
                f"(shape {dims}) promises; the file is corrupt or not a single IDX array"
            )
    array = buf.view(dtype).reshape(dims)
    if dtype.byteorder == ">":
        array = array.astype(dtype.newbyteorder("="))
    return array


@contextlib.contextmanager
def _open(path):
    """Yield (binary file, is_gzip), turning OS errors into DataError."""
    regular_file(path, "IDX file")
    try:
        with open(path, "rb") as probe:
            compressed = probe.read(2) == _GZIP_MAGIC
        f = gzip.open(path, "rb") if compressed else open(path, "rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with f:
        yield f, compressed


def _read_guarded(f, n: int, path) -> bytes:
    try:
        return f.read(n)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt gzip stream: {exc}") from None


def _read_into(f, view: memoryview, path) -> int:
    """Fill view from f; returns how many bytes arrived (fewer only at end of file)."""
    pos = 0
    while pos < len(view):
        try:
            n = f.readinto(view[pos : pos + _CHUNK])
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt gzip stream: {exc}") from None
        if not n:
            break
        pos += n
    return pos


def _read_gzip_payload(f, path, total: int, nbytes: int) -> tuple[np.ndarray, int]:
    """Decompress up to nbytes of payload: (buffer, bytes that arrived).

    A gzip header cannot be checked against the file size, so the output grows with the data
    that actually decompresses: a few hundred bytes claiming gigabytes allocate a megabyte. A
    valid file costs one allocation: the buffer is sized in one go when the gzip trailer's ISIZE
    (uncompressed size mod 2**32) agrees with the header and deflate's best ratio (~1032:1)
    makes that size possible for the file.
    """
    isize, packed = _gzip_trailer(path)
    trusted = isize == total % 2**32 and total <= _MAX_DEFLATE_RATIO * packed
    size = nbytes if trusted else min(nbytes, _FIRST_ALLOCATION)
    buf = np.empty(size, dtype=np.uint8)
    got = _read_into(f, memoryview(buf), path)
    while got == size < nbytes:
        size = min(nbytes, 2 * size)
        grown = np.empty(size, dtype=np.uint8)
        grown[:got] = buf[:got]
        buf = grown
        got += _read_into(f, memoryview(buf)[got:], path)
    return buf, got


def _gzip_trailer(path) -> tuple[int | None, int]:
    """(ISIZE of a gzip file's last member, or None; the file's size in bytes)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size < 18:  # shorter than an empty gzip member
                return None, size
            f.seek(-4, os.SEEK_END)
            return int.from_bytes(f.read(4), "little"), size
    except OSError:
        return None, 0


def _read_header(f, path) -> tuple[np.dtype, tuple[int, ...], int, int]:
    """Parse and bound-check the header: (disk dtype, dims, header bytes, payload bytes)."""
    magic = _read_guarded(f, 4, path)
    if len(magic) < 4:
        raise DataError(f"{path}: only {len(magic)} bytes, too short for an IDX header")
    if magic[0] or magic[1]:
        raise DataError(
            f"{path}: wrong magic 0x{int.from_bytes(magic, 'big'):08x}: not an IDX file "
            "(an IDX file starts with two zero bytes, a type code and the number of dimensions)"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_TYPES)
        raise DataError(f"{path}: unknown IDX type code 0x{code:02x} (known: {known})")
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares zero dimensions")
    raw_dims = _read_guarded(f, 4 * ndim, path)
    if len(raw_dims) < 4 * ndim:
        raise DataError(f"{path}: truncated header: {ndim} dimensions declared, file ends first")
    dims = struct.unpack(f">{ndim}I", raw_dims)
    dtype = IDX_TYPES[code]
    nbytes = math.prod(dims) * dtype.itemsize
    # a zero-size dimension does not excuse the others: NumPy cannot even describe (0, 2**32, 2**32)
    claimed = math.prod(d for d in dims if d) * dtype.itemsize
    if claimed > MAX_PAYLOAD_BYTES:
        size = f"{nbytes} bytes" if nbytes else f"{claimed} bytes without its zero dimensions"
        raise DataError(
            f"{path}: header declares shape {dims} of {dtype.name}, {size}, more than "
            f"the {MAX_PAYLOAD_BYTES} bytes accepted; the header is corrupt"
        )
    return dtype, dims, 4 + 4 * ndim, nbytes


def _size_problem(path, dims, expected: int, actual: int) -> str:
    if actual < expected:
        return (
            f"{path}: truncated: the header (shape {dims}) promises {expected} payload bytes, "
            f"the file holds {actual}"
        )
    return (
        f"{path}: trailing bytes: the header (shape {dims}) promises {expected} payload bytes, "
        f"the file holds {actual}"
    )
