"""Reading single image files (see image_decode.FORMATS_TEXT) as arrays.

`read_image` gives float32 (H, W) grayscale in [0, 1], `read_rgb` float32 (H, W, 3); both read the
file once, recognise its format by its leading bytes (not its name), check every budget the
header allows before any pixel is allocated, apply EXIF orientation, and composite transparency
onto black. Gray is the luminance 0.299 R + 0.587 G + 0.114 B. Every bad input raises DataError
naming the file. How images become a model's input is dualnet.data.prepare.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import DataError
from . import image_decode
from .files import regular_file
from .image_budget import MAX_DECODE_BYTES, MAX_PIXELS
from .image_decode import FORMATS_TEXT

__all__ = ["FORMATS_TEXT", "MAX_DECODE_BYTES", "MAX_FILE_BYTES", "MAX_PIXELS", "border", "dark_on_light",
           "read_image", "read_pixels", "read_rgb"]

# A larger file is not read: no image within the pixel and memory budgets needs more
MAX_FILE_BYTES = 2**28

_OTHER_FORMATS = {b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"RIFF": "RIFF (WebP?)", b"PK\x03\x04": "zip (.npz?)"}
_UNSUPPORTED = f"unsupported image format (use {FORMATS_TEXT})"


def read_pixels(path: str | os.PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """The image in `path` as float32 (H, W, C) in [0, 1], C = 1 for gray formats and 3 for colour.

    `size` (height, width), the size the image is going to be resized to, lets a JPEG decode at
    the smallest scale that still covers it (the result is then smaller than the file's image).
    """
    return np.ascontiguousarray(_decoded(path, size), dtype=np.float32)


def _decoded(path, size) -> np.ndarray:
    """float64 (H, W, C) in [0, 1] (see read_pixels)."""
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
    fmt = image_decode.sniff(data)
    if fmt is None:
        raise DataError(f"{path}: {_unknown_format(data, path)}")
    return np.clip(image_decode.decode(data, path, fmt, size), 0.0, 1.0)


def read_image(path: str | os.PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """float32 (H, W) grayscale in [0, 1] of an image file (see read_pixels)."""
    gray = image_decode.luminance(_decoded(path, size))
    return np.ascontiguousarray(np.clip(gray, 0.0, 1.0), dtype=np.float32)


def read_rgb(path: str | os.PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """float32 (H, W, 3) in [0, 1] of an image file; gray formats give three equal planes."""
    pixels = read_pixels(path, size)
    return pixels if pixels.shape[2] == 3 else np.ascontiguousarray(np.repeat(pixels, 3, axis=2))


def border(img: np.ndarray) -> np.ndarray:
    """The pixels on the four edges of img (H, W), corners twice: where the background shows."""
    return np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])


def dark_on_light(img: np.ndarray) -> bool:
    """True when gray img (H, W) in [0, 1] has a mostly light border: a dark digit on a light page,
    the opposite of MNIST's light digits on black (invert="auto" inverts those)."""
    return bool(border(img).mean() > 0.5)


def _unknown_format(data: bytes, path) -> str:
    for magic, name in _OTHER_FORMATS.items():
        if data.startswith(magic):
            return f"{name} files are not supported; {_UNSUPPORTED}"
    expected = {".png": f"not a PNG file: bad signature {data[:8]!r}",
                ".pgm": "not a PGM file: it must start with P2 or P5",
                ".npy": "not a .npy file: the \\x93NUMPY magic is missing"}
    ext = os.path.splitext(os.fsdecode(path))[1].lower().replace(".pnm", ".pgm")
    return f"{expected[ext]}; {_UNSUPPORTED}" if ext in expected else _UNSUPPORTED
