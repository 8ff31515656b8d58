"""Reading single images (PNG, PGM/PPM, .npy) and preparing them as input for an MNIST-style model.

`read_image` gives a float32 (H, W) grayscale array in [0, 1]; `prepare` resizes it and makes
the digit light on dark, as in MNIST; `load_images` does both for a list of files.

The format is recognised by the file's leading bytes, not by its name. PNG is decoded with the
standard library only (zlib, struct): every colour type and bit depth of the PNG specification,
non-interlaced. Colour is reduced to luminance 0.299 R + 0.587 G + 0.114 B and transparency is
composited onto black. Every check the header allows is made before any pixel is allocated, and
decompression stops one byte past the size the header implies, so neither a header claiming a
huge image nor a zip bomb can exhaust memory. Every bad input raises DataError naming the file.
"""

from __future__ import annotations

import io
import math
import operator
import os
import re
import struct
import zlib

import numpy as np

from ..errors import DataError
from .files import regular_file

__all__ = ["INVERT_MODES", "MAX_FILE_BYTES", "MAX_PIXELS", "load_images", "prepare", "read_image"]

# An image declaring more pixels than this is treated as corrupt; a larger file is not read.
MAX_PIXELS = 10**8
MAX_FILE_BYTES = 2**30
INVERT_MODES = ("auto", "yes", "no")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_NPY_MAGIC = b"\x93NUMPY"
_LUMA = np.array([0.299, 0.587, 0.114])
# PNG colour type -> (description, samples per pixel, allowed bit depths)
_PNG_TYPES = {0: ("grayscale", 1, (1, 2, 4, 8, 16)), 2: ("RGB", 3, (8, 16)),
              3: ("palette", 1, (1, 2, 4, 8)), 4: ("gray+alpha", 2, (8, 16)),
              6: ("RGBA", 4, (8, 16))}
_PNM_FIELD = re.compile(rb"(?:\s|#[^\r\n]*)*(\d+)")  # a header number after blanks and comments
_OTHER_FORMATS = {b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"BM": "BMP", b"II*\x00": "TIFF",
                  b"MM\x00*": "TIFF", b"RIFF": "RIFF (WebP?)", b"PK\x03\x04": "zip (.npz?)"}
_UNSUPPORTED = "unsupported image format (use PNG, PGM or .npy)"


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG, PGM/PPM (P2, P5, P3, P6) or .npy file as float32 (H, W) grayscale in [0, 1]."""
    regular_file(path, "image file")
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_FILE_BYTES:
                raise DataError(f"{path}: larger than {MAX_FILE_BYTES} bytes; not read as an image")
            data = f.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not data:
        raise DataError(f"{path}: empty file, not an image")
    if data[:4] == _PNG_SIGNATURE[:4] or _PNG_SIGNATURE.startswith(data):
        image = _decode_png(data, path)
    elif data.startswith(_NPY_MAGIC):
        image = _decode_npy(data, path)
    elif re.match(rb"P[1-7]\s", data):
        image = _decode_pnm(data, path)
    else:
        raise DataError(f"{path}: {_unknown_format(data, path)}")
    return np.ascontiguousarray(np.clip(image, 0.0, 1.0), dtype=np.float32)


def prepare(image, size: tuple[int, int] = (28, 28), invert: str = "auto") -> np.ndarray:
    """Resize a grayscale image to `size` (height, width): float32 (1, H, W) in [0, 1].

    `image` is (H, W) or (1, H, W), uint8 (divided by 255) or float in [0, 1]. Shrinking
    averages areas, enlarging interpolates bilinearly. invert="auto" inverts (1 - x) when the
    mean of the image border exceeds 0.5, i.e. a dark digit on a light background, the opposite
    of MNIST; "yes" and "no" force the choice.
    """
    (out_h, out_w), invert = _checked_args(size, invert)
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[0] == 1:
        img = img[0]
    if img.ndim != 2 or img.size == 0:
        raise DataError(f"image must be a non-empty (H, W) or (1, H, W) array, not {img.shape}")
    if img.dtype == np.uint8:
        img = img / 255.0
    elif img.dtype.kind != "f":
        raise DataError(f"image dtype {img.dtype} not supported (use uint8, or float in [0, 1])")
    elif not np.isfinite(img).all() or img.min() < 0 or img.max() > 1:
        raise DataError("image values must be finite and in [0, 1]")
    img = img.astype(np.float64)
    if invert == "auto":
        border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
        invert = "yes" if border.mean() > 0.5 else "no"
    if invert == "yes":
        img = 1.0 - img
    out = _resize_matrix(img.shape[0], out_h) @ img @ _resize_matrix(img.shape[1], out_w).T
    return np.clip(out, 0.0, 1.0).astype(np.float32)[None]


def load_images(paths, size: tuple[int, int] = (28, 28), invert: str = "auto") -> np.ndarray:
    """`prepare(read_image(p))` for each path: float32 (N, 1, H, W); one path counts as a list."""
    size, invert = _checked_args(size, invert)
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    images = [prepare(read_image(p), size, invert) for p in paths]
    return np.stack(images) if images else np.zeros((0, 1, *size), np.float32)


def _checked_args(size, invert) -> tuple[tuple[int, int], str]:
    try:
        h, w = (operator.index(v) for v in size if not isinstance(v, bool))
        if h < 1 or w < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise DataError(f"size must be two positive integers (height, width): {size!r}") from None
    if invert is True or invert is False:
        invert = "yes" if invert else "no"
    if invert not in INVERT_MODES:
        raise DataError(f"invert must be one of {', '.join(INVERT_MODES)}, not {invert!r}")
    return (h, w), invert


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix resampling one axis: area averaging to shrink, bilinear to enlarge."""
    if n_out < n_in:  # output pixel i covers [i, i + 1) * n_in / n_out; weights: overlaps
        edges = np.arange(n_out + 1) * (n_in / n_out)
        j = np.arange(n_in)
        w = np.minimum(edges[1:, None], j + 1) - np.maximum(edges[:-1, None], j)
        w = np.clip(w, 0.0, None)
        return w / w.sum(axis=1, keepdims=True)
    # pixel centres aligned, x_in + 0.5 = (x_out + 0.5) * n_in / n_out, clamped at the edges;
    # the tent 1 - |x_in - j| is the bilinear weight (and the identity when n_out == n_in)
    x_in = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    return np.clip(1.0 - np.abs(x_in[:, None] - np.arange(n_in)), 0.0, None)


def _unknown_format(data: bytes, path) -> str:
    for magic, name in _OTHER_FORMATS.items():
        if data.startswith(magic):
            return f"{name} files are not supported; {_UNSUPPORTED}"
    expected = {".png": f"not a PNG file: bad signature {data[:8]!r}",
                ".pgm": "not a PGM file: it must start with P2 or P5",
                ".npy": "not a .npy file: the \\x93NUMPY magic is missing"}
    ext = os.path.splitext(os.fsdecode(path))[1].lower().replace(".pnm", ".pgm")
    return f"{expected[ext]}; {_UNSUPPORTED}" if ext in expected else _UNSUPPORTED


def _check_pixels(width: int, height: int, path, what: str) -> None:
    if width < 1 or height < 1:
        raise DataError(f"{path}: {what} declares an empty image ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise DataError(f"{path}: {what} declares {width}x{height} pixels, more than the "
                        f"{MAX_PIXELS} accepted; the file is corrupt or far too large")


def _to_gray(px: np.ndarray) -> np.ndarray:
    """(H, W, C) in [0, 1], C = gray, gray+alpha, RGB or RGBA -> (H, W) luminance over black."""
    channels = px.shape[2]
    gray = px[..., :3] @ _LUMA if channels >= 3 else px[..., 0]
    return gray * px[..., -1] if channels in (2, 4) else gray


def _decode_npy(data: bytes, path) -> np.ndarray:
    f, fmt = io.BytesIO(data), np.lib.format
    try:
        version = fmt.read_magic(f)
        reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = reader(f)
    except Exception as exc:  # numpy's header parser raises many types (even TokenError)
        raise DataError(f"{path}: corrupt .npy header: {exc}") from None
    if dtype.hasobject:  # refused from the header: nothing is ever unpickled
        raise DataError(f"{path}: .npy holds Python objects (dtype {dtype}), which would need "
                        "unpickling; refused: save a uint8 or float array")
    if dtype != np.uint8 and dtype.kind != "f":
        raise DataError(f"{path}: unsupported .npy dtype {dtype} (use uint8, or float in [0, 1])")
    hw = shape if len(shape) == 2 else shape[1:] if shape[:1] == (1,) else shape[:2]
    if len(shape) not in (2, 3) or math.prod(shape) != math.prod(hw):
        raise DataError(f"{path}: .npy array of shape {shape} is not one grayscale image "
                        "(expected (H, W), (1, H, W) or (H, W, 1))")
    _check_pixels(hw[1], hw[0], path, ".npy header")
    count, have = math.prod(shape), len(data) - f.tell()
    if have < count * dtype.itemsize:
        raise DataError(f"{path}: truncated .npy: shape {shape} needs "
                        f"{count * dtype.itemsize} bytes, the file holds {have}")
    array = np.frombuffer(data, dtype, count, f.tell()).reshape(shape, order="FC"[not fortran])
    array = array.reshape(hw).astype(np.float64)
    if dtype == np.uint8:
        return array / 255.0
    if not np.isfinite(array).all():
        raise DataError(f"{path}: .npy image holds NaN or infinite values")
    lo, hi = array.min(), array.max()
    if lo < 0 or hi > 255:
        raise DataError(f"{path}: .npy values span [{lo:g}, {hi:g}], not [0, 1] (or 0..255)")
    return array / 255.0 if hi > 1 else array


def _decode_pnm(data: bytes, path) -> np.ndarray:
    kind = "P" + chr(data[1])
    if kind not in ("P2", "P5", "P3", "P6"):
        raise DataError(f"{path}: PNM type {kind} not supported (use P2/P5 PGM or P3/P6 PPM)")
    fields, pos = [], 2
    while len(fields) < 3:
        m = _PNM_FIELD.match(data, pos)
        if not m or len(m.group(1)) > 12:
            raise DataError(f"{path}: truncated or corrupt {kind} header (expected width, "
                            "height and maxval as decimal numbers)")
        fields.append(int(m.group(1)))
        pos = m.end()
    width, height, maxval = fields
    _check_pixels(width, height, path, f"{kind} header")
    if not 1 <= maxval <= 65535:
        raise DataError(f"{path}: {kind} maxval {maxval} outside 1..65535")
    channels = 3 if kind in ("P3", "P6") else 1
    count = width * height * channels
    if kind in ("P5", "P6"):  # binary: one whitespace byte, then big-endian samples
        if not data[pos:pos + 1].isspace():
            raise DataError(f"{path}: corrupt {kind} header: no whitespace after maxval")
        dtype = np.dtype(">u2" if maxval > 255 else "u1")
        if len(data) - pos - 1 < count * dtype.itemsize:
            raise DataError(f"{path}: truncated {kind}: {width}x{height} needs "
                            f"{count * dtype.itemsize} bytes of pixels, the file holds "
                            f"{len(data) - pos - 1}")
        values = np.frombuffer(data, dtype, count, pos + 1)
    else:  # ASCII: decimal samples separated by whitespace
        tokens = re.sub(rb"#[^\r\n]*", b" ", data[pos:]).split()
        if len(tokens) < count:
            raise DataError(f"{path}: truncated {kind}: {width}x{height} needs {count} samples, "
                            f"the file holds {len(tokens)}")
        try:
            values = np.array([int(t) for t in tokens[:count]], dtype=np.int64)
        except ValueError:
            raise DataError(f"{path}: corrupt {kind}: a sample is not a decimal number") from None
    if values.max() > maxval:
        raise DataError(f"{path}: corrupt {kind}: sample {values.max()} exceeds maxval {maxval}")
    return _to_gray(values.reshape(height, width, channels) / maxval)


def _decode_png(data: bytes, path) -> np.ndarray:
    if not data.startswith(_PNG_SIGNATURE):
        if _PNG_SIGNATURE.startswith(data):
            raise DataError(f"{path}: truncated PNG: the file ends inside the signature")
        raise DataError(f"{path}: corrupt PNG signature {data[:8]!r} (copied in text mode?)")
    view, pos, idat = memoryview(data), len(_PNG_SIGNATURE), []
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
    width, height, depth, ctype = header
    what, channels, _ = _PNG_TYPES[ctype]
    if not idat:
        raise DataError(f"{path}: corrupt PNG: no IDAT chunk (no image data)")
    if ctype == 3 and palette is None:
        raise DataError(f"{path}: corrupt PNG: palette image without a PLTE chunk")
    stride = (width * channels * depth + 7) // 8
    expected = height * (stride + 1)  # a filter-type byte starts each row
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
    rows = np.frombuffer(raw, np.uint8).reshape(height, stride + 1)
    if rows[:, 0].max() > 4:
        y = int(np.argmax(rows[:, 0] > 4))
        raise DataError(f"{path}: corrupt PNG: unknown filter type {rows[y, 0]} in row {y}")
    pixels = _unfilter(rows[:, 1:], rows[:, 0], max(1, channels * depth // 8))
    if depth == 16:
        samples = pixels.view(">u2").reshape(height, width, channels)
    elif depth == 8:
        samples = pixels.reshape(height, width, channels)
    else:  # 1, 2 or 4 bits: one sample per pixel, packed from the high bits
        bits = np.unpackbits(pixels, axis=1).reshape(height, -1, depth)
        samples = (bits @ (1 << np.arange(depth - 1, -1, -1)))[:, :width, None]
    if ctype == 3:
        index = samples[..., 0]
        if index.max() >= len(palette):
            raise DataError(f"{path}: corrupt PNG: palette index {index.max()} beyond the "
                            f"{len(palette)} PLTE entries")
        alpha = np.full((len(palette), 1), 255, np.uint8)  # tRNS: alpha of the first entries
        if trns is not None:
            alpha[:min(len(trns), len(palette)), 0] = np.frombuffer(trns, np.uint8)[:len(palette)]
        return _to_gray(np.concatenate([palette, alpha], axis=1)[index] / 255.0)
    gray = _to_gray(samples / float(2**depth - 1))
    if trns is not None and ctype in (0, 2) and len(trns) == 2 * channels:
        gray[(samples == np.frombuffer(trns, ">u2")).all(axis=2)] = 0.0  # the transparent colour
    return gray


def _png_header(body, path) -> tuple[int, int, int, int]:
    if len(body) != 13:
        raise DataError(f"{path}: corrupt PNG: IHDR of {len(body)} bytes, not 13")
    width, height, depth, ctype, compression, filtering, interlace = struct.unpack(">IIBBBBB", body)
    if ctype not in _PNG_TYPES or depth not in _PNG_TYPES[ctype][2]:
        raise DataError(f"{path}: corrupt PNG: invalid colour type {ctype} with bit depth {depth}")
    if compression or filtering:
        raise DataError(f"{path}: corrupt PNG: unknown compression/filter method")
    if interlace:
        raise DataError(f"{path}: interlaced PNG not supported; re-save without interlacing")
    _check_pixels(width, height, path, "PNG header")
    return width, height, depth, ctype


def _unfilter(lines: np.ndarray, filters: np.ndarray, bpp: int) -> np.ndarray:
    """Undo the PNG row filters: lines (H, stride) uint8 with filters (H,) -> (H, stride) uint8.

    A byte depends on the byte bpp before it in its row (Sub, Average, Paeth) and on the bytes
    above those two (Up, Average, Paeth). Grouping bytes into pixels of bpp bytes, every pixel on
    one anti-diagonal (row + column = d) depends only on the two diagonals before it, so the loop
    runs over the H + W - 1 diagonals, each decoded in one vectorised step whatever the filters.
    """
    if not filters.any():
        return lines
    height, stride = lines.shape
    width, w1 = stride // bpp, stride // bpp + 1
    src = np.zeros((height + 1, w1, bpp), np.int16)  # a zero row above and a zero column left
    src[1:, 1:] = lines.reshape(height, width, bpp)
    src = src.reshape(-1, bpp)
    out = np.zeros_like(src)
    kind, rows = filters.astype(np.intp)[:, None], np.arange(height)
    for d in range(height + width - 1):
        y = rows[max(0, d - width + 1):min(height, d + 1)]
        i = (y + 1) * w1 + (d - y + 1)  # flat index of pixel (y, d - y)
        a, b, c = out[i - 1], out[i - w1], out[i - w1 - 1]  # left, up, up-left
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        out[i] = (src[i] + np.choose(kind[y], [0 * a, a, b, (a + b) >> 1, paeth])) & 0xFF
    return out.reshape(height + 1, w1, bpp)[1:, 1:].reshape(height, stride).astype(np.uint8)
