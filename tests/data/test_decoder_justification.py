"""Why dualnet keeps its own PNG structural pass and PGM/PPM reader beside Pillow: each test shows a
file Pillow alone accepts or degrades, and dualnet refuses or reads exactly. If Pillow changes so
that one of these starts to fail, the dualnet code it justifies can go."""

from __future__ import annotations

import io
import zlib

import numpy as np
from image_files import chunk, good_png, ihdr, rejected, write
from PIL import Image

from dualnet.data.images import read_image


def _pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im)


def test_pillow_alone_decodes_a_truncated_png_without_error(tmp_path):
    data = good_png()
    cut = data[:data.index(b"IEND") - 6]  # inside the last image data chunk, its CRC missing
    assert _pillow(cut).shape == (8, 8)  # a partial picture, no error
    rejected(tmp_path, cut, "cut.png", "truncated PNG")


def test_pillow_alone_ignores_image_data_beyond_the_header_size(tmp_path):
    bomb = zlib.compress(bytes(2_000_000), 9)  # 2 MB of zeros for a 10x10 image
    data = b"\x89PNG\r\n\x1a\n" + ihdr(10, 10) + chunk(b"IDAT", bomb) + chunk(b"IEND", b"")
    assert _pillow(data).shape == (10, 10)
    rejected(tmp_path, data, "bomb.png", "image data exceeds")


def test_pillow_alone_clips_a_pgm_sample_above_maxval(tmp_path):
    data = b"P5\n2 1\n100\n\x00\xff"
    assert _pillow(data).max() == 255  # silently clipped
    rejected(tmp_path, data, "over.pgm", "sample 255 exceeds maxval 100")


def test_pillow_alone_reduces_16_bit_ppm_colour_to_8_bits(tmp_path):
    samples = np.array([[[1000] * 3, [1001] * 3, [65535, 0, 1]]], dtype=">u2")
    data = b"P6\n3 1\n65535\n" + samples.tobytes()
    decoded = _pillow(data)
    assert decoded.dtype == np.uint8 and (decoded[0, 0] == decoded[0, 1]).all()  # 1000 and 1001 merge
    got = read_image(write(tmp_path, "deep.ppm", data))
    want = (samples.astype(np.float64) / 65535) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got[0, 0] < got[0, 1]  # kept apart at 16 bits
