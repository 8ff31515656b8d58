"""Reading single images (PNG, JPEG, BMP, GIF, PGM/PPM, .npy) and preparing them as input for an
MNIST-style model.

`read_image` gives a float32 (H, W) grayscale array in [0, 1]; `prepare` resizes it and makes
the digit light on dark, as in MNIST; `load_images` does both for a list of files.

The format is recognised by the file's leading bytes, not by its name. PNG, JPEG, BMP and GIF
are decoded by Pillow (a dependency of dualnet; the `images` extra names it too), PGM/PPM and
.npy by dualnet itself (see dualnet.data.image_decode). Colour is reduced to luminance
0.299 R + 0.587 G + 0.114 B and transparency is composited onto black. Every check the header
allows (pixel count, working memory) is made before any pixel is allocated, and a PNG's
decompression stops one byte past the size its header implies, so neither a header claiming a
huge image nor a zip bomb can exhaust memory. Every bad input raises DataError naming the file.
"""

from __future__ import annotations

import operator
import os
import re

import numpy as np

from ..errors import DataError
from . import image_decode
from .files import regular_file
from .image_decode import MAX_DECODE_BYTES, MAX_PIXELS, PILLOW_FORMATS

__all__ = ["INVERT_MODES", "MAX_DECODE_BYTES", "MAX_FILE_BYTES", "MAX_PIXELS", "border", "dark_on_light", "load_images",
           "prepare", "read_image"]

# A larger file is not read: no image within the pixel and memory budgets needs more
MAX_FILE_BYTES = 2**28
INVERT_MODES = ("auto", "yes", "no")

_NPY_MAGIC = b"\x93NUMPY"
_OTHER_FORMATS = {b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"RIFF": "RIFF (WebP?)", b"PK\x03\x04": "zip (.npz?)"}
_UNSUPPORTED = "unsupported image format (use PNG, JPEG, BMP, GIF, PGM or .npy)"
# rows resized at a time: bounds the partial sums of a tall image
_BLOCK_VALUES = 1 << 22


def read_image(path: str | os.PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a PNG, JPEG, BMP, GIF (one frame), PGM/PPM (P2, P5, P3, P6) or .npy file as float32
    (H, W) grayscale in [0, 1].

    `size` (height, width), the size the image is going to be resized to, lets a JPEG decode at
    the smallest scale that still covers it (the result is then smaller than the file's image).
    """
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
    fmt = next((name for magic, name in PILLOW_FORMATS.items() if data.startswith(magic)), None)
    if fmt == "PNG" or b"\x89PNG\r\n\x1a\n".startswith(data):
        image = image_decode.decode_pillow(data, path, "PNG", image_decode.check_png(data, path), size)
    elif fmt is not None:
        image = image_decode.decode_pillow(data, path, fmt, None, size)
    elif data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        image = image_decode.decode_pillow(data, path, "WEBP", None, size)
    elif data.startswith(_NPY_MAGIC):
        image = image_decode.decode_npy(data, path)
    elif re.match(rb"P[1-7]\s", data):
        image = image_decode.decode_pnm(data, path)
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
        invert = "yes" if dark_on_light(img) else "no"
    if invert == "yes":
        img = 1.0 - img
    out = _resize(img, out_h, out_w)
    return np.clip(out, 0.0, 1.0).astype(np.float32)[None]


def border(img: np.ndarray) -> np.ndarray:
    """The pixels on the four edges of img (H, W), corners twice: where the background shows."""
    return np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])


def dark_on_light(img: np.ndarray) -> bool:
    """True when gray img (H, W) in [0, 1] has a mostly light border: a dark digit on a light page,
    the opposite of MNIST's light digits on black (invert="auto" inverts those)."""
    return bool(border(img).mean() > 0.5)


def load_images(paths, size: tuple[int, int] = (28, 28), invert: str = "auto") -> np.ndarray:
    """`prepare(read_image(p))` for each path: float32 (N, 1, H, W); one path counts as a list."""
    size, invert = _checked_args(size, invert)
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    images = [prepare(read_image(p, size), size, invert) for p in paths]
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


def _resize(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """(H, W) float64 -> (out_h, out_w): area averaging to shrink an axis, bilinear to enlarge it.

    Shrinking axes go first, so the intermediate is never larger than the input; each axis is
    resampled from cumulative sums (area) or two neighbours (bilinear), in blocks of rows, so the
    cost is O(H * W) time and O(block) extra memory whatever the sizes (no dense weight matrices).
    """
    axes = sorted([(0, out_h), (1, out_w)], key=lambda a: a[1] >= img.shape[a[0]])
    for axis, n_out in axes:
        img = _resize_axis(img if axis == 1 else img.T, n_out)
        img = img if axis == 1 else img.T
    return img


def _resize_axis(img: np.ndarray, n_out: int) -> np.ndarray:
    """Resample the last axis of (R, n_in) to n_out, block of rows by block of rows."""
    rows, n_in = img.shape
    out = np.empty((rows, n_out))
    step = max(1, _BLOCK_VALUES // max(n_in, n_out))
    for r in range(0, rows, step):
        out[r:r + step] = _resample(np.ascontiguousarray(img[r:r + step]), n_out)
    return out


def _resample(block: np.ndarray, n_out: int) -> np.ndarray:
    n_in = block.shape[1]
    if n_out < n_in:  # output pixel i covers [i, i + 1) * n_in / n_out: the mean over that span
        csum = np.zeros((block.shape[0], n_in + 1))
        np.cumsum(block, axis=1, out=csum[:, 1:])
        edges = np.arange(n_out + 1) * (n_in / n_out)
        lo = np.minimum(np.floor(edges).astype(np.intp), n_in - 1)
        frac = edges - lo
        # the integral of the row from 0 to each edge: whole pixels plus a part of the next
        integral = csum[:, lo] + frac * block[:, lo]
        return (integral[:, 1:] - integral[:, :-1]) / (n_in / n_out)
    # pixel centres aligned, x_in + 0.5 = (x_out + 0.5) * n_in / n_out, clamped at the edges;
    # the tent 1 - |x_in - j| weighs the two neighbours (the identity when n_out == n_in)
    x_in = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    j0 = np.floor(x_in).astype(np.intp)
    j1 = np.minimum(j0 + 1, n_in - 1)
    t = x_in - j0
    return block[:, j0] * (1 - t) + block[:, j1] * t


def _unknown_format(data: bytes, path) -> str:
    for magic, name in _OTHER_FORMATS.items():
        if data.startswith(magic):
            return f"{name} files are not supported; {_UNSUPPORTED}"
    expected = {".png": f"not a PNG file: bad signature {data[:8]!r}",
                ".pgm": "not a PGM file: it must start with P2 or P5",
                ".npy": "not a .npy file: the \\x93NUMPY magic is missing"}
    ext = os.path.splitext(os.fsdecode(path))[1].lower().replace(".pnm", ".pgm")
    return f"{expected[ext]}; {_UNSUPPORTED}" if ext in expected else _UNSUPPORTED
