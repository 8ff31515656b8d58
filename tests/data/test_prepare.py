"""Preparing real images for predict: the digit steps one by one (box, aspect, centre of mass,
inversion), the colour crop, normalization, and colour read from files."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from dualnet.data import images, prepare
from dualnet.errors import DataError


@st.composite
def blob_on_canvas(draw, margin: int = 0):
    """A bright rectangle of drawn size and place on a dark canvas, and where it is; `margin`
    pixels at each edge stay canvas."""
    h, w = draw(st.integers(8, 120)), draw(st.integers(8, 120))
    bh, bw = draw(st.integers(1, h - 2 * margin)), draw(st.integers(1, w - 2 * margin))
    top, left = draw(st.integers(margin, h - bh - margin)), draw(st.integers(margin, w - bw - margin))
    img = np.zeros((h, w))
    img[top:top + bh, left:left + bw] = draw(st.floats(0.5, 1.0))
    return img, (top, top + bh, left, left + bw)


@given(blob_on_canvas())
def test_ink_box_is_the_bounding_box_of_the_bright_pixels(case):
    img, box = case
    assert prepare.ink_box(img) == box


def test_ink_box_of_a_blank_image_is_none_and_faint_pixels_are_not_ink():
    assert prepare.ink_box(np.zeros((5, 7))) is None
    img = np.zeros((9, 9))
    img[2, 3], img[6, 7] = 1.0, prepare.INK_LEVEL / 2
    assert prepare.ink_box(img) == (2, 3, 3, 4)


@given(st.integers(1, 500), st.integers(1, 500), st.integers(1, 40), st.integers(1, 40))
def test_fit_size_keeps_the_aspect_ratio_within_a_pixel_and_touches_the_box(height, width, box_h, box_w):
    h, w = prepare.fit_size(height, width, box_h, box_w)
    assert 1 <= h <= box_h and 1 <= w <= box_w
    assert h == box_h or w == box_w
    scale = min(box_h / height, box_w / width)
    assert abs(h - height * scale) <= 0.5 + 1e-9 or h == 1
    assert abs(w - width * scale) <= 0.5 + 1e-9 or w == 1


@given(st.integers(2, 30), st.integers(2, 30), st.integers(0, 2**16))
def test_centre_of_mass_is_the_weighted_mean_position(h, w, seed):
    img = np.random.default_rng(seed).uniform(0, 1, (h, w))
    ys, xs = np.mgrid[:h, :w]
    cy, cx = prepare.centre_of_mass(img)
    assert cy == pytest.approx((img * ys).sum() / img.sum()) and cx == pytest.approx((img * xs).sum() / img.sum())


@given(blob_on_canvas(margin=1), st.booleans(), st.sampled_from([(28, 28), (32, 24), (16, 16)]))
def test_digit_input_centres_the_ink_by_mass_within_a_pixel_and_fits_the_box(case, dark_on_light, size):
    img, _ = case
    if dark_on_light:
        img = 1.0 - img  # a dark blob on a light canvas: inverted back
    x = prepare.digit_input(img, size)
    assert x.shape == (1, *size) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    cy, cx = prepare.centre_of_mass(x[0])
    assert abs(cy - (size[0] - 1) / 2) <= 1 and abs(cx - (size[1] - 1) / 2) <= 1
    top, bottom, left, right = prepare.ink_box(x[0], 0.05)
    box_h, box_w = round(size[0] * prepare.DIGIT_BOX), round(size[1] * prepare.DIGIT_BOX)
    assert bottom - top <= box_h + 1 and right - left <= box_w + 1
    assert bottom - top >= box_h - 1 or right - left >= box_w - 1  # scaled up or down to touch the box


def test_digit_input_keeps_the_aspect_ratio_of_a_tall_stroke():
    img = np.zeros((400, 600))
    img[100:300, 280:300] = 1.0  # 200 x 20: a "1"
    x = prepare.digit_input(img)[0]
    top, bottom, left, right = prepare.ink_box(x, 0.5)
    assert bottom - top == 20 and 1 <= right - left <= 3


@given(st.floats(0.55, 1.0), st.floats(0.0, 0.45))
def test_needs_inversion_follows_the_border(light, dark):
    img = np.full((10, 12), light)
    img[3:7, 3:9] = dark
    assert prepare.needs_inversion(img)
    assert not prepare.needs_inversion(1.0 - img)


def test_digit_input_obeys_a_forced_invert_choice():
    img = np.zeros((20, 20))
    img[5:15, 8:12] = 1.0
    light = prepare.digit_input(img, invert="no")
    assert light.max() == pytest.approx(1.0) and light[0, 0, 0] == 0
    # forced the wrong way: the bar turns darker than its background, so no ink is left
    assert not prepare.digit_input(img, invert="yes").any()


def test_digit_input_of_a_blank_image_is_blank():
    assert not prepare.digit_input(np.full((50, 40), 0.8)).any()


@given(st.integers(1, 200), st.integers(1, 200), st.integers(0, 2**16))
def test_colour_input_is_the_centre_of_the_image_resized_by_its_shorter_side(height, width, seed):
    rgb = np.random.default_rng(seed).uniform(0, 1, (height, width, 3))
    x = prepare.colour_input(rgb, (32, 32))
    assert x.shape == (3, 32, 32) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1


def test_colour_input_crops_the_centre_equally_from_both_ends():
    rgb = np.zeros((100, 300, 3))
    rgb[:, 100:200, 1] = 1.0  # the middle third green: after the crop, the whole picture
    x = prepare.colour_input(rgb, (32, 32))
    # the filter blends the edge columns with their dark neighbours, nothing further in
    assert x[1, :, 1:-1].min() > 0.999 and x[1].min() > 0.5 and x[0].max() == 0 and x[2].max() == 0


def test_read_rgb_keeps_colour_and_spreads_gray_over_three_channels(tmp_path):
    rgb = np.zeros((10, 14, 3), np.uint8)
    rgb[..., 0] = 255
    Image.fromarray(rgb).save(tmp_path / "red.png")
    got = images.read_rgb(tmp_path / "red.png")
    assert got.shape == (10, 14, 3)
    np.testing.assert_allclose(got[..., 0], 1.0)
    assert got[..., 1:].max() == 0
    gray = (np.arange(28 * 28) % 256).astype(np.uint8).reshape(28, 28)
    np.save(tmp_path / "gray.npy", gray)
    got = images.read_rgb(tmp_path / "gray.npy")
    np.testing.assert_allclose(got[..., 1], gray / 255.0, atol=1e-6)
    assert (got[..., 0] == got[..., 2]).all()


def test_load_inputs_refuses_a_model_of_two_channels(tmp_path):
    np.save(tmp_path / "d.npy", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match=r"shape \(2, 28, 28\); predict prepares 1-channel"):
        prepare.load_inputs([tmp_path / "d.npy"], (2, 28, 28))
