"""Images as their owner sees them: EXIF orientation applied, 16-bit gray kept at its precision."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dualnet.data import images

# EXIF orientation -> how the stored pixels turn upright (numpy on the stored (H, W) array)
UPRIGHT = {1: lambda a: a, 2: np.fliplr, 3: lambda a: np.rot90(a, 2), 4: np.flipud,
           5: lambda a: np.rot90(np.fliplr(a), 1), 6: lambda a: np.rot90(a, -1),
           7: lambda a: np.rot90(np.fliplr(a), -1), 8: lambda a: np.rot90(a, 1)}


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
def test_exif_orientation_turns_the_picture_upright(tmp_path, fmt, orientation):
    stored = np.zeros((16, 24), np.uint8)
    stored[2:6, 3:9] = 255  # a block near the top left corner of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"photo.{fmt.lower()}"
    lossless = {"JPEG": {"quality": 100}, "WEBP": {"lossless": True}}.get(fmt, {})
    Image.fromarray(stored).save(path, format=fmt, exif=exif, **lossless)
    got = images.read_image(path)
    want = UPRIGHT[orientation](stored / 255.0)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=0.04 if fmt == "JPEG" else 1e-6)
    assert images.read_rgb(path).shape == (*want.shape, 3)


def test_sixteen_bit_gray_png_keeps_every_level(tmp_path):
    levels = np.arange(1000, 1000 + 12 * 10, dtype=np.uint16).reshape(12, 10)  # neighbours 1/65535 apart
    Image.fromarray(levels).save(tmp_path / "deep.png")
    got = images.read_image(tmp_path / "deep.png")
    np.testing.assert_allclose(got, levels / 65535, rtol=1e-6)
    assert len(np.unique(got)) == levels.size  # 8 bits would merge each 256 levels into one
