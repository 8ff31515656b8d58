"""What decoding one image may cost, checked from its header before any pixel is allocated."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator

from ..errors import DataError

MAX_PIXELS = 10**8
# Working memory one image may take while decoded and prepared; a 1 MB file can declare far more
MAX_DECODE_BYTES = 2**28
# bytes per pixel, beyond the decoded samples and their float copy, that reading and preparing
# need (measured: the float64 planes, the clipped copy, the float32 result, the resize)
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


@contextlib.contextmanager
def pillow_budget(label: str) -> Iterator[None]:
    """Pillow opening one image under MAX_PIXELS: its decompression-bomb warning becomes an error,
    either kind raised as a DataError starting with `label` (the file, and what it is read as);
    Pillow's own limit is restored after, so code outside dualnet keeps its setting."""
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"{label} refused as a decompression bomb ({exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved
