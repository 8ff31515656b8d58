"""Pictures forged for the image tests: a tiny PNG encoder, independent of the decoder (filters are
applied row by row here), and helpers to read or reject bytes (shared by test_images and test_image_formats)."""

import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from dualnet.data.images import read_image
from dualnet.errors import DataError

LUMA = np.array([0.299, 0.587, 0.114])
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}



def chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def ihdr(width, height, depth=8, ctype=0, interlace=0) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, interlace))


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def filter_row(row, prior, ftype, bpp):
    """Encode one row (bytes as int array) with PNG filter ftype given the unfiltered prior row."""
    left = np.concatenate([np.zeros(bpp, int), row[:-bpp]])
    upleft = np.concatenate([np.zeros(bpp, int), prior[:-bpp]])
    predictor = [0, left, prior, (left + prior) // 2, paeth(left, prior, upleft)][ftype]
    return (row - predictor) % 256


def raw_rows(samples, depth):
    """(H, W, C) integer samples -> list of unfiltered row bytes (as int arrays)."""
    if depth == 16:
        return [np.frombuffer(r.astype(">u2").tobytes(), np.uint8).astype(int) for r in samples]
    if depth == 8:
        return [r.reshape(-1).astype(int) for r in samples]
    bits = (samples[..., 0][..., None] >> np.arange(depth - 1, -1, -1)) & 1  # (H, W, depth)
    return [np.packbits(b.reshape(-1).astype(np.uint8)).astype(int) for b in bits]


def png_bytes(samples, ctype, depth=8, filters=lambda y: y % 5, palette=None, trns=None,
              extra=b"", interlace=0):
    """PNG of samples (H, W, C) with row y filtered by filters(y)."""
    samples = np.asarray(samples)
    h, w, _ = samples.shape
    bpp = max(1, CHANNELS[ctype] * depth // 8)
    prior = None
    body = bytearray()
    for y, row in enumerate(raw_rows(samples, depth)):
        prior = np.zeros_like(row) if prior is None else prior
        ftype = filters(y)
        body.append(ftype)
        body += bytes(filter_row(row, prior, ftype, bpp).astype(np.uint8))
        prior = row
    out = b"\x89PNG\r\n\x1a\n" + ihdr(w, h, depth, ctype, interlace) + extra
    if palette is not None:
        out += chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
    if trns is not None:
        out += chunk(b"tRNS", trns)
    data = zlib.compress(bytes(body))
    return out + chunk(b"IDAT", data[:5]) + chunk(b"IDAT", data[5:]) + chunk(b"IEND", b"")


def expected_gray(samples, maxval, ctype):
    px = samples / maxval
    gray = px[..., :3] @ LUMA if ctype in (2, 6) else px[..., 0]
    return gray * px[..., -1] if ctype in (4, 6) else gray


def write(tmp_path, name, data) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_bytes(data: bytes, name="image.png"):
    with tempfile.TemporaryDirectory() as tmp:
        return read_image(write(Path(tmp), name, data))


def rejected(tmp_path, data, name="bad.png", match=""):
    path = write(tmp_path, name, data)
    with pytest.raises(DataError, match=match) as info:
        read_image(path)
    assert str(path) in str(info.value)
    return str(info.value)


def good_png():
    return png_bytes(np.arange(64).reshape(8, 8, 1) * 4, 0)


def npy_bytes(shape, payload, descr="|u1"):
    """A version 1.0 .npy file written by hand, so the header can lie about the payload."""
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload
