"""Image decoders behind dualnet.data.images.read_image: Pillow for PNG, JPEG, BMP, GIF and WebP;
dualnet's own readers for PGM/PPM (P2, P5, P3, P6) and .npy, which need no dependency.

Pillow does the pixel decoding (in C, every PNG variant, JPEG draft mode); dualnet decides
beforehand what it may cost. Each decoder checks its header first: the pixel count against
MAX_PIXELS and the working memory (decoded pixels, their float conversion and the resize)
against MAX_DECODE_BYTES, so an image is refused in one line before any pixel is allocated.
For PNG a structural pass (chunk lengths, CRCs, IHDR, PLTE, IEND, the inflated size capped at
what the header implies, filter bytes) runs first with zlib alone, so a corrupt or bomb file is
named precisely and never reaches the decoder. Every function returns float64 (H, W) gray in
[0, 1]: luminance 0.299 R + 0.587 G + 0.114 B, transparency composited onto black.
"""

from __future__ import annotations

import io
import math
import re
import struct
import warnings
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import DataError

MAX_PIXELS = 10**8
# Working memory one image may take while decoded and prepared; a 1 MB file can declare far more
MAX_DECODE_BYTES = 2**28
PILLOW_FORMATS = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"BM": "BMP"}
INSTALL_PILLOW = 'pip install "dualnet[images]"'
_LUMA = np.array([0.299, 0.587, 0.114])
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> (description, samples per pixel, allowed bit depths)
_PNG_TYPES = {0: ("grayscale", 1, (1, 2, 4, 8, 16)), 2: ("RGB", 3, (8, 16)),
              3: ("palette", 1, (1, 2, 4, 8)), 4: ("gray+alpha", 2, (8, 16)),
              6: ("RGBA", 4, (8, 16))}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_PNM_FIELD = re.compile(rb"(?:\s|#[^\r\n]*)*(\d+)")  # a header number after blanks and comments
# bytes per pixel, beyond the decoded samples and their float copy, that read_image and prepare
# need (measured: the float64 luminance and its clipped copy, the float32 result, prepare's
# float64 copy, the resize's partial sums and integrals)
_WORK_BYTES_PER_PIXEL = 40


def check_budget(width: int, height: int, sample_bytes: float, path, what: str) -> None:
    """Refuse an image whose pixels exceed MAX_PIXELS, or whose decoding would need more than
    MAX_DECODE_BYTES (`sample_bytes`: bytes per pixel of the decoded samples)."""
    if width < 1 or height < 1:
        raise DataError(f"{path}: {what} declares an empty image ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise DataError(f"{path}: {what} declares {width}x{height} pixels, more than the "
                        f"{MAX_PIXELS} accepted; the file is corrupt or far too large")
    need = width * height * (sample_bytes + 4 * math.ceil(sample_bytes) + _WORK_BYTES_PER_PIXEL)
    if need > MAX_DECODE_BYTES:
        raise DataError(f"{path}: {what} declares {width}x{height} pixels, which need about {need / 2**20:,.0f} MB "
                        f"to decode, more than the {MAX_DECODE_BYTES / 2**20:,.0f} MB budget; resize the image first")


def to_gray(px: np.ndarray) -> np.ndarray:
    """(H, W, C) in [0, 1], C = gray, gray+alpha, RGB or RGBA -> (H, W) luminance over black."""
    channels = px.shape[2]
    gray = px[..., :3] @ _LUMA if channels >= 3 else px[..., 0]
    return gray * px[..., -1] if channels in (2, 4) else gray


# --- PNG: structure checked here, pixels decoded by Pillow ------------------------------------


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


def _png_gray(samples: np.ndarray, info: PngInfo, path) -> np.ndarray:
    """Pillow's array of a PNG (its mode follows the colour type) -> gray, exactly as the file says."""
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
        return to_gray(np.concatenate([info.palette, alpha], axis=1)[index] / 255.0)
    px = samples.reshape(info.height, info.width, -1)
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
    gray = to_gray(raw / float(maxval))
    if info.trns is not None and ctype in (0, 2) and len(info.trns) == 2 * (1 if ctype == 0 else 3):
        key = np.frombuffer(info.trns, ">u2").astype(np.int64)
        if maxval == 255 and depth == 16:
            key = key >> 8
        gray[(raw == key).all(axis=2)] = 0.0  # the transparent colour
    return gray


# --- Pillow ------------------------------------------------------------------------------------


def decode_pillow(data: bytes, path, fmt: str, png: PngInfo | None, size: tuple[int, int] | None) -> np.ndarray:
    """Decode `data` (a `fmt` file) with Pillow within the budget; `size` (height, width), the
    size the image will be resized to, lets JPEG decode at a reduced scale (draft mode)."""
    try:
        from PIL import Image
    except ImportError:
        raise DataError(f"{path}: reading {fmt} images needs Pillow: {INSTALL_PILLOW}") from None
    saved = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            with Image.open(io.BytesIO(data), formats=[fmt]) as im:
                return _decode_open(im, path, fmt, png, size)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"{path}: {fmt} image refused as a decompression bomb ({exc})") from None
    except DataError:
        raise
    except Image.UnidentifiedImageError:
        raise DataError(f"{path}: corrupt {fmt} file: its header cannot be decoded") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError) as exc:
        # Pillow's decoders report damage with many exception types
        raise DataError(f"{path}: corrupt or truncated {fmt} file ({type(exc).__name__}: {exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _decode_open(im, path, fmt: str, png: PngInfo | None, size: tuple[int, int] | None) -> np.ndarray:
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        raise DataError(f"{path}: animated {fmt} with {frames} frames; predict reads one image: save a "
                        "single frame")
    if fmt == "JPEG" and size is not None:
        im.draft("L" if im.mode == "L" else "RGB", (size[1], size[0]))  # only the scale needed
    width, height = im.size
    check_budget(width, height, max(1, len(im.getbands())), path, f"{fmt} header")
    im.load()
    if png is not None:
        return _png_gray(np.asarray(im), png, path)
    transparent = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    if im.mode not in ("L", "RGB", "RGBA", "LA"):
        im = im.convert("RGBA" if transparent else "RGB")
    px = np.asarray(im)
    return to_gray((px[..., None] if px.ndim == 2 else px) / 255.0)


# --- .npy and PGM/PPM: dualnet's own readers ---------------------------------------------------


def decode_npy(data: bytes, path) -> np.ndarray:
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
    check_budget(hw[1], hw[0], dtype.itemsize, path, ".npy header")
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


def decode_pnm(data: bytes, path) -> np.ndarray:
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
    channels = 3 if kind in ("P3", "P6") else 1
    check_budget(width, height, channels * 2, path, f"{kind} header")
    if not 1 <= maxval <= 65535:
        raise DataError(f"{path}: {kind} maxval {maxval} outside 1..65535")
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
        bad = next((t for t in tokens[:count] if not t.isdigit() or len(t) > 12), None)
        if bad is not None:  # int() would take "-10" or "+3": samples are unsigned decimals
            raise DataError(f"{path}: corrupt {kind}: a sample is not a decimal number: "
                            f"{bad.decode('latin-1')!r} (samples are unsigned)")
        values = np.array([int(t) for t in tokens[:count]], dtype=np.int64)
    if values.max() > maxval:
        raise DataError(f"{path}: corrupt {kind}: sample {values.max()} exceeds maxval {maxval}")
    return to_gray(values.reshape(height, width, channels) / maxval)
