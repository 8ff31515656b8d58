"""Corpus images in Pillow's formats (GIF, PNG, JPEG, BMP, plain PGM): decompression bombs refused
from their headers, and damaged files. Written by make_corpus.py's make_images.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from make_corpus import png_chunk, write


def make_pillow_images(digit: np.ndarray) -> None:
    """Images for Pillow's formats: bombs refused from their headers, and damaged files."""
    from PIL import Image

    frames = [Image.fromarray(digit), Image.fromarray(255 - digit)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    write("images/animated-two-frames.gif", buf.getvalue())
    # 10^8 pixels of a 1-bit image in ~12 KB: within the pixel cap, not within the memory budget
    row = b"\x00" + bytes(1250)
    body = zlib.compress(row * 10000, 9)
    header = struct.pack(">IIBBBBB", 10000, 10000, 1, 0, 0, 0, 0)
    write("images/one-bit-10000x10000.png", b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
          + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b""))
    buf = io.BytesIO()
    Image.fromarray(digit).save(buf, "JPEG")
    jpeg = bytearray(buf.getvalue())
    sof = jpeg.index(b"\xff\xc0")  # SOF0: length, precision, then height and width
    jpeg[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)
    write("images/jpeg-header-60000x60000.jpg", bytes(jpeg))
    write("images/negative-sample.pgm", b"P2\n2 2\n255\n0 -7 20 255\n")
    buf = io.BytesIO()
    Image.fromarray(digit).save(buf, "BMP")
    write("images/bmp-truncated.bmp", buf.getvalue()[:200])
