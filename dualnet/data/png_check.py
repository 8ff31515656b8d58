"""The PNG structural pass dualnet runs before Pillow decodes a PNG's pixels.

Pillow alone decodes a truncated PNG into a partial image without an error, and silently ignores
image data beyond what the header implies (tests/data/test_decoder_justification.py shows both), so
a damaged file would reach a model as a plausible picture. This pass walks the chunks (lengths,
CRCs, IHDR, PLTE, IEND), inflates the image data with zlib capped at one byte more than the header
implies (a zip bomb stops there) and checks the filter bytes; nothing is decoded into pixels.
`png_pixels` then turns Pillow's array into exact samples, as the file states them.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .image_budget import check_budget

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> (description, samples per pixel, allowed bit depths)
_PNG_TYPES = {0: ("grayscale", 1, (1, 2, 4, 8, 16)), 2: ("RGB", 3, (8, 16)),
              3: ("palette", 1, (1, 2, 4, 8)), 4: ("gray+alpha", 2, (8, 16)),
              6: ("RGBA", 4, (8, 16))}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def composite(px: np.ndarray) -> np.ndarray:
    """(H, W, C) in [0, 1], C = gray, gray+alpha, RGB or RGBA -> (H, W, 1 or 3), alpha composited
    onto black."""
    channels = px.shape[2]
    if channels in (2, 4):
        return px[..., :-1] * px[..., -1:]
    return px


@dataclass
class PngInfo:
    width: int
    height: int
    depth: int
    ctype: int
    palette: np.ndarray | None
    trns: bytes | None


def check_png(data: bytes, path) -> PngInfo:
    """Walk the chunks of a PNG and inflate its image data (capped), raising DataError for any
    structural fault; nothing is decoded into pixels here."""
    if not data.startswith(PNG_SIGNATURE):
        if PNG_SIGNATURE.startswith(data):
            raise DataError(f"{path}: truncated PNG: the file ends inside the signature")
        raise DataError(f"{path}: corrupt PNG signature {data[:8]!r} (copied in text mode?)")
    view, pos, idat = memoryview(data), len(PNG_SIGNATURE), []
    header = palette = trns = None
    while True:
        if pos + 12 > len(data):
            raise DataError(f"{path}: truncated PNG: the file ends at byte {len(data)} before IEND")
        length, ctype = struct.unpack_from(">I4s", data, pos)
        name, end = ctype.decode("latin-1"), pos + 12 + length
        if end > len(data):
            raise DataError(f"{path}: truncated PNG: chunk {name!r} at byte {pos} declares "
                            f"{length} bytes, the file ends first")
        body = view[pos + 8:end - 4]
        if zlib.crc32(view[pos + 4:end - 4]) != struct.unpack_from(">I", data, end - 4)[0]:
            raise DataError(f"{path}: corrupt PNG: CRC mismatch in chunk {name!r} at byte {pos}")
        if header is None and ctype != b"IHDR":
            raise DataError(f"{path}: corrupt PNG: first chunk is {name!r}, not IHDR")
        pos = end
        if ctype == b"IHDR":
            header = _png_header(body, path)
        elif ctype == b"PLTE":
            if length % 3 or not 1 <= length // 3 <= 256:
                raise DataError(f"{path}: corrupt PNG: PLTE chunk of {length} bytes")
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif ctype == b"tRNS":
            trns = bytes(body)
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
        elif not ctype[0] & 0x20:  # lower-case first letter: ancillary, safe to skip
            raise DataError(f"{path}: PNG uses the unknown critical chunk {name!r}; not supported")
    width, height, depth, ctype, interlace = header
    what, channels, _ = _PNG_TYPES[ctype]
    if not idat:
        raise DataError(f"{path}: corrupt PNG: no IDAT chunk (no image data)")
    if ctype == 3 and palette is None:
        raise DataError(f"{path}: corrupt PNG: palette image without a PLTE chunk")
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    sizes = [(-(-(height - y0) // dy), -(-(width - x0) // dx)) for x0, y0, dx, dy in passes]
    sizes = [(h, w) for h, w in sizes if h > 0 and w > 0]
    expected = sum(h * ((w * channels * depth + 7) // 8 + 1) for h, w in sizes)  # + a filter byte per row
    raw, inflater = bytearray(), zlib.decompressobj()
    try:
        for chunk in idat:  # never more than expected + 1 bytes: a zip bomb stops here
            raw += inflater.decompress(chunk, expected + 1 - len(raw))
            if len(raw) > expected:
                raise DataError(f"{path}: corrupt PNG: image data exceeds the {expected} bytes "
                                f"that {width}x{height} {what} needs")
    except zlib.error as exc:
        raise DataError(f"{path}: corrupt PNG: bad compressed image data ({exc})") from None
    if len(raw) < expected:
        raise DataError(f"{path}: truncated PNG: {len(raw)} bytes of image data, "
                        f"{width}x{height} {what} needs {expected}")
    if not interlace:
        rows = np.frombuffer(raw, np.uint8).reshape(height, -1)
        if rows[:, 0].max() > 4:
            y = int(np.argmax(rows[:, 0] > 4))
            raise DataError(f"{path}: corrupt PNG: unknown filter type {rows[y, 0]} in row {y}")
    return PngInfo(width, height, depth, ctype, palette, trns)


def _png_header(body, path) -> tuple[int, int, int, int, int]:
    if len(body) != 13:
        raise DataError(f"{path}: corrupt PNG: IHDR of {len(body)} bytes, not 13")
    width, height, depth, ctype, compression, filtering, interlace = struct.unpack(">IIBBBBB", body)
    if ctype not in _PNG_TYPES or depth not in _PNG_TYPES[ctype][2]:
        raise DataError(f"{path}: corrupt PNG: invalid colour type {ctype} with bit depth {depth}")
    if compression or filtering or interlace > 1:
        raise DataError(f"{path}: corrupt PNG: unknown compression/filter/interlace method")
    channels = _PNG_TYPES[ctype][1]
    check_budget(width, height, channels * max(1, depth // 8), path, "PNG header")
    return width, height, depth, ctype, interlace


def png_pixels(samples: np.ndarray, info: PngInfo, path) -> np.ndarray:
    """Pillow's array of a PNG (its mode follows the colour type; (H, W) or (H, W, C), already in
    its EXIF orientation) -> float64 (H, W, 1 or 3) in [0, 1], exactly as the file says."""
    ctype, depth = info.ctype, info.depth
    if ctype == 3:
        index = samples
        if index.max() >= len(info.palette):
            raise DataError(f"{path}: corrupt PNG: palette index {index.max()} beyond the "
                            f"{len(info.palette)} PLTE entries")
        alpha = np.full((len(info.palette), 1), 255, np.uint8)  # tRNS: alpha of the first entries
        if info.trns is not None:
            n = min(len(info.trns), len(info.palette))
            alpha[:n, 0] = np.frombuffer(info.trns, np.uint8)[:n]
        return composite(np.concatenate([info.palette, alpha], axis=1)[index] / 255.0)
    px = samples.reshape(samples.shape[0], samples.shape[1], -1)
    if samples.dtype == bool:
        raw, maxval = px.astype(np.int64), 1
    elif samples.dtype == np.uint16 or depth == 8 or ctype != 0:
        # Pillow gives 16-bit gray exactly, 16-bit colour as its high bytes
        raw, maxval = px, (65535 if samples.dtype == np.uint16 else 255)
    else:  # 2 or 4 bits: Pillow scales the samples to 0..255
        maxval = 2**depth - 1
        raw = px // (255 // maxval)
    if ctype == 4 and px.shape[2] == 4:  # 16-bit gray+alpha arrives as RGBA
        raw = raw[..., [0, 3]]
    pixels = composite(raw / float(maxval))
    if info.trns is not None and ctype in (0, 2) and len(info.trns) == 2 * (1 if ctype == 0 else 3):
        key = np.frombuffer(info.trns, ">u2").astype(np.int64)
        if maxval == 255 and depth == 16:
            key = key >> 8
        pixels[(raw == key).all(axis=2)] = 0.0  # the transparent colour
    return pixels
