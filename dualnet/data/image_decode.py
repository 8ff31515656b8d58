"""Image decoders behind dualnet.data.images.read_image: Pillow decodes PNG, JPEG, BMP, GIF and
WebP; NumPy reads .npy (never unpickling); dualnet reads PGM/PPM itself.

Pillow does the pixel decoding; dualnet adds only what Pillow does not guarantee, each part
justified by a test that Pillow alone fails (tests/data/test_decoder_justification.py):
- budgets from the header (pixel count, working memory) before any pixel is allocated;
- the PNG structural pass (dualnet.data.png_check): Pillow decodes a truncated PNG without error;
- the PGM/PPM reader: Pillow clips a sample above maxval instead of refusing the file, and
  reduces 16-bit PPM colour to 8 bits.
EXIF orientation is applied (ImageOps.exif_transpose), so a phone photo is upright. Every decoder
returns float64 (H, W, C) in [0, 1], C = 1 (gray) or 3 (RGB), transparency composited onto black.
"""

from __future__ import annotations

import io
import math
import re
import struct

import numpy as np

from ..errors import DataError
from .image_budget import check_budget, pillow_budget
from .png_check import PNG_SIGNATURE, PngInfo, check_png, composite, png_pixels

#: the formats read_image reads, by leading bytes -> the name Pillow knows them by (None: not Pillow)
FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "BMP": "BMP", "GIF": "GIF", "WebP": "WEBP", "PGM/PPM": None,
           ".npy": None}
#: the one list of readable image formats, for help texts, errors and the README
FORMATS_TEXT = ", ".join(list(FORMATS)[:-1]) + " or " + list(FORMATS)[-1]
INSTALL_PILLOW = 'pip install "dualnet[images]"'
_MAGIC = {PNG_SIGNATURE[:4]: "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"BM": "BMP"}
_NPY_MAGIC = b"\x93NUMPY"
_PNM_FIELD = re.compile(rb"(?:\s|#[^\r\n]*)*(\d+)")  # a header number after blanks and comments
_LUMA = np.array([0.299, 0.587, 0.114])


def sniff(data: bytes) -> str | None:
    """The name (a key of FORMATS) of the format `data` starts like, else None."""
    fmt = next((name for magic, name in _MAGIC.items() if data.startswith(magic)), None)
    if fmt is None and PNG_SIGNATURE.startswith(data):
        return "PNG"  # so a file cut inside the signature is called a truncated PNG
    if fmt is None and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WebP"
    if fmt is None and data.startswith(_NPY_MAGIC):
        return ".npy"
    if fmt is None and re.match(rb"P[1-7]\s", data):
        return "PGM/PPM"
    return fmt


def decode(data: bytes, path, fmt: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode `data`, a file of format `fmt` (a key of FORMATS): float64 (H, W, 1 or 3) in [0, 1].
    `size` (height, width), the size the image is going to, lets JPEG decode at a reduced scale."""
    if fmt == ".npy":
        return decode_npy(data, path)[..., None]
    if fmt == "PGM/PPM":
        return decode_pnm(data, path)
    png = check_png(data, path) if fmt == "PNG" else None
    return decode_pillow(data, path, FORMATS[fmt] or fmt, png, size)


def luminance(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 1 or 3) -> (H, W): 0.299 R + 0.587 G + 0.114 B, or the gray plane itself."""
    return pixels[..., :3] @ _LUMA if pixels.shape[2] == 3 else pixels[..., 0]


# --- Pillow ------------------------------------------------------------------------------------


def decode_pillow(data: bytes, path, fmt: str, png: PngInfo | None, size: tuple[int, int] | None) -> np.ndarray:
    """Decode `data` (a file Pillow knows as `fmt`) within the budget."""
    try:
        from PIL import Image
    except ImportError:
        raise DataError(f"{path}: reading {fmt} images needs Pillow: {INSTALL_PILLOW}") from None
    try:
        with pillow_budget(f"{path}: {fmt} image"), Image.open(io.BytesIO(data), formats=[fmt]) as im:
            return _decode_open(im, path, fmt, png, size)
    except DataError:
        raise
    except Image.UnidentifiedImageError:
        raise DataError(f"{path}: corrupt {fmt} file: its header cannot be decoded") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError) as exc:
        # Pillow's decoders report damage with many exception types
        raise DataError(f"{path}: corrupt or truncated {fmt} file ({type(exc).__name__}: {exc})") from None


def _decode_open(im, path, fmt: str, png: PngInfo | None, size: tuple[int, int] | None) -> np.ndarray:
    from PIL import ImageOps

    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        raise DataError(f"{path}: animated {fmt} with {frames} frames; predict reads one image: save a single "
                        "frame")
    if fmt == "JPEG" and size is not None:
        side = max(size)  # either orientation: EXIF may turn the picture after decoding
        im.draft("L" if im.mode == "L" else "RGB", (side, side))  # only the scale needed
    width, height = im.size
    check_budget(width, height, max(1, len(im.getbands())), path, f"{fmt} header")
    im.load()
    im = ImageOps.exif_transpose(im)  # a phone photo stored sideways, turned upright
    if png is not None:
        return png_pixels(np.asarray(im), png, path)
    transparent = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    if im.mode not in ("L", "RGB", "RGBA", "LA"):
        im = im.convert("RGBA" if transparent else "RGB")
    px = np.asarray(im)
    return composite((px[..., None] if px.ndim == 2 else px) / 255.0)


# --- .npy: NumPy, without pickles ----------------------------------------------------------------


def decode_npy(data: bytes, path) -> np.ndarray:
    """A .npy file of one grayscale image, uint8 or float in [0, 1] (or 0..255): float64 (H, W)."""
    f, fmt = io.BytesIO(data), np.lib.format
    try:
        version = fmt.read_magic(f)
        reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = reader(f)
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
    need, have = math.prod(shape) * dtype.itemsize, len(data) - f.tell()
    if have < need:
        raise DataError(f"{path}: truncated .npy: shape {shape} needs {need} bytes, the file holds {have}")
    # the header is checked and the payload is there: NumPy reads it, pickles refused
    array = np.load(io.BytesIO(data), allow_pickle=False).reshape(hw).astype(np.float64)
    if dtype == np.uint8:
        return array / 255.0
    if not np.isfinite(array).all():
        raise DataError(f"{path}: .npy image holds NaN or infinite values")
    lo, hi = array.min(), array.max()
    if lo < 0 or hi > 255:
        raise DataError(f"{path}: .npy values span [{lo:g}, {hi:g}], not [0, 1] (or 0..255)")
    return array / 255.0 if hi > 1 else array


# --- PGM/PPM: dualnet's own reader ---------------------------------------------------------------


def decode_pnm(data: bytes, path) -> np.ndarray:
    """P2/P5 (gray) or P3/P6 (RGB), any maxval up to 65535 kept at its precision: (H, W, 1 or 3)."""
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
    return values.reshape(height, width, channels) / maxval
