"""One photo made into a training image: the preparation an image folder's conversion and `predict`
share, so a photo given to a trained model is prepared exactly as its training images were.

    pixels, colour = decode_photo("cat.jpg", (32, 32), channels=None)   # uint8 (3, 32, 32), True

Steps: Pillow decodes the file (JPEG, PNG, BMP, GIF (first frame), WebP; recognised by content,
the name's suffix only selects which files of a folder are tried); the EXIF orientation is applied
(`ImageOps.exif_transpose`), so a phone's rotated photo stands upright; transparency is composited
onto black; the image becomes RGB (channels 3 or None) or luminance (channels 1, Pillow's
0.299 R + 0.587 G + 0.114 B); its centre is cropped to the target's aspect ratio and resized with
Pillow's antialiased bilinear filter (`ImageOps.fit`). A JPEG is decoded at the smallest scale
that still covers the target (draft mode). The pixel count and decoding memory are checked from
the header before any pixel is decoded (dualnet.data.image_decode.check_budget).
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import DataError
from .files import regular_file
from .image_budget import pillow_budget
from .image_decode import INSTALL_PILLOW, check_budget
from .images import MAX_FILE_BYTES

__all__ = ["IMAGE_SUFFIXES", "PHOTO_FORMATS", "PREPARATION", "decode_photo", "photo_input"]

#: the suffixes (lower case) of the files an image folder's conversion tries as images
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".webp")
PHOTO_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP")
#: the name of this preparation, stored with a folder's cache and a checkpoint trained on it
PREPARATION = "exif-upright, centre crop to aspect, bilinear resize (dualnet.data.photo)"
_ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def decode_photo(path: str | os.PathLike, size: tuple[int, int],
                 channels: int | None = None) -> tuple[np.ndarray, bool]:
    """(uint8 (C, H, W), has_colour) of the photo at `path` prepared to `size` (height, width).

    channels: 1 (luminance), 3 (RGB) or None (RGB, and has_colour says whether any pixel's three
    values differ, so a caller can keep one plane of an all-gray folder: for gray pixels the planes
    equal the luminance exactly). Raises DataError naming the file when it cannot be decoded.
    """
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise DataError(f"{path}: reading photos needs Pillow: {INSTALL_PILLOW}") from None
    h, w = size
    path = regular_file(path, "image file")  # never a FIFO or device: opening one would block or never end
    try:
        if os.stat(path).st_size > MAX_FILE_BYTES:
            raise DataError(f"{path}: larger than {MAX_FILE_BYTES:,} bytes; not read as an image")
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        with pillow_budget(f"{path}:"), Image.open(path, formats=PHOTO_FORMATS) as im:
            width, height = im.size
            check_budget(width, height, max(1, len(im.getbands())), path, f"{im.format} header")
            if im.format in ("JPEG", "MPO"):  # MPO: a phone's multi-picture JPEG
                # draft before the orientation is applied: a rotated photo's stored axes are swapped
                rotated = im.getexif().get(0x0112) in _ROTATED
                im.draft("RGB" if im.mode != "L" else "L", (h, w) if rotated else (w, h))
            im.load()
            upright = ImageOps.exif_transpose(im)
            plane = _flatten(upright, channels)
            fitted = ImageOps.fit(plane, (w, h), method=Image.Resampling.BILINEAR)
            pixels = np.asarray(fitted, dtype=np.uint8)
    except DataError:
        raise
    except Image.UnidentifiedImageError:
        raise DataError(f"{path}: not a JPEG, PNG, BMP, GIF or WebP image, or its header is damaged") from None
    except Exception as exc:  # Pillow's decoders report damage with many exception types
        raise DataError(f"{path}: corrupt or truncated image ({type(exc).__name__}: {exc})") from None
    if pixels.ndim == 2:
        return np.ascontiguousarray(pixels[None]), False
    chw = np.ascontiguousarray(pixels.transpose(2, 0, 1))
    colour = bool((chw[0] != chw[1]).any() or (chw[0] != chw[2]).any())
    return chw, colour


def _flatten(im, channels: int | None):
    """`im` as RGB (channels 3 or None) or L (channels 1), transparency composited onto black."""
    from PIL import Image

    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # 16-bit (or wider) gray: Pillow's own conversion to 8 bits clips at 255 instead of scaling
        values = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or values.max() > 255 else 255.0
        im = Image.fromarray(np.clip(np.round(values * (255.0 / top)), 0, 255).astype(np.uint8))
    transparent = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if transparent:
        rgba = im.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        im = Image.alpha_composite(black, rgba)
    return im.convert("L" if channels == 1 else "RGB")


def photo_input(paths, size: tuple[int, int], channels: int) -> np.ndarray:
    """float32 (N, C, H, W) in [0, 1]: each photo prepared by `decode_photo` (what `predict` gives a
    model trained on an image folder)."""
    out = np.zeros((len(paths), channels, *size), np.float32)
    for i, p in enumerate(paths):
        pixels, _ = decode_photo(p, size, channels)
        out[i] = pixels / np.float32(255)
    return out
