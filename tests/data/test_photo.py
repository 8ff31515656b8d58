"""One photo's preparation (dualnet.data.photo), shared by an image folder's conversion and predict."""

from __future__ import annotations

import numpy as np
import pytest
from photo_folders import picture, save

from dualnet.data.photo import decode_photo, photo_input
from dualnet.errors import DataError


def test_an_exif_rotated_photo_is_decoded_upright(tmp_path):
    tall = picture("cat", 40, 24, seed=1)  # stripes across x: a tall picture, easy to tell from its rotation
    save(tmp_path / "upright.png", tall)
    save(tmp_path / "side.png", np.ascontiguousarray(np.rot90(tall, 1)), exif_orientation=6)
    upright, _ = decode_photo(tmp_path / "upright.png", (40, 24))
    rotated, _ = decode_photo(tmp_path / "side.png", (40, 24))
    assert np.array_equal(rotated, upright)
    save(tmp_path / "side_no_exif.png", np.ascontiguousarray(np.rot90(tall, 1)))
    ignored, _ = decode_photo(tmp_path / "side_no_exif.png", (40, 24))
    assert not np.array_equal(ignored, upright)


def test_a_rotated_jpeg_decoded_in_draft_mode_matches_its_upright_twin(tmp_path):
    tall = picture("dog", 120, 64, seed=2)
    save(tmp_path / "upright.jpg", tall)
    save(tmp_path / "side.jpg", np.ascontiguousarray(np.rot90(tall, 1)), exif_orientation=6)
    a, _ = decode_photo(tmp_path / "upright.jpg", (30, 16))
    b, _ = decode_photo(tmp_path / "side.jpg", (30, 16))
    assert a.shape == b.shape == (3, 30, 16)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 6  # JPEG's loss differs between the two encodings


def test_gray_pixels_give_three_equal_planes_equal_to_the_luminance(tmp_path):
    save(tmp_path / "g.png", picture("owl", 30, 20, seed=3, gray=True))
    rgb, colour = decode_photo(tmp_path / "g.png", (12, 10))
    gray, _ = decode_photo(tmp_path / "g.png", (12, 10), channels=1)
    assert not colour and rgb.shape == (3, 12, 10) and gray.shape == (1, 12, 10)
    assert np.array_equal(rgb[0], rgb[1]) and np.array_equal(rgb[0], rgb[2]) and np.array_equal(rgb[:1], gray)
    save(tmp_path / "c.png", picture("owl", 30, 20, seed=3))
    assert decode_photo(tmp_path / "c.png", (12, 10))[1]


def test_the_centre_is_cropped_to_the_target_aspect_ratio(tmp_path):
    wide = np.zeros((10, 30, 3), np.uint8)
    wide[:, 10:20] = 255  # a white centre third between black thirds
    save(tmp_path / "wide.png", wide)
    square, _ = decode_photo(tmp_path / "wide.png", (10, 10))
    assert square.min() == 255  # the black sides were cropped away, not squeezed in


def test_transparency_is_composited_onto_black(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:, :4, 3] = 255  # left half opaque, right half transparent
    save(tmp_path / "t.png", rgba)
    px, _ = decode_photo(tmp_path / "t.png", (8, 8))
    assert (px[:, :, :3] == 200).all() and (px[:, :, 5:] == 0).all()


@pytest.mark.parametrize("content", [b"", b"\xff\xd8\xff\xe0 truncated jpeg", b"GIF89a\x01", b"plain text"])
def test_an_unreadable_photo_raises_one_data_error_naming_it(tmp_path, content):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(content)
    with pytest.raises(DataError, match="bad.jpg"):
        decode_photo(bad, (8, 8))


def test_photo_input_is_decode_photo_scaled_to_unit_floats(tmp_path):
    save(tmp_path / "a.jpg", picture("cat", 33, 21, seed=4))
    x = photo_input([tmp_path / "a.jpg"], (9, 7), 3)
    assert x.dtype == np.float32 and x.shape == (1, 3, 9, 7)
    assert np.array_equal(x[0], decode_photo(tmp_path / "a.jpg", (9, 7), 3)[0] / np.float32(255))


def test_a_16_bit_gray_png_is_scaled_to_8_bits_not_clipped(tmp_path):
    from PIL import Image

    ramp = np.tile(np.linspace(0, 65535, 16).astype(np.uint16), (16, 1))
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    px, colour = decode_photo(tmp_path / "deep.png", (16, 16), channels=1)
    assert not colour and px[0, 0, 0] == 0 and px[0, 0, -1] == 255
    assert np.all(np.diff(px[0, 0].astype(int)) > 0)  # a ramp, not a white block


def test_a_fifo_is_refused_without_being_opened(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(DataError, match="FIFO"):
        decode_photo(tmp_path / "pipe.jpg", (8, 8))
