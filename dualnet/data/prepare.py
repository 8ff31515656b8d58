"""Real images made into a model's input, for `dualnet predict`.

A model with one input channel is taken for a digit model and gets MNIST's own preparation:
dark-on-light images are inverted to light-on-dark, the background level is subtracted, the image
is cropped to the bounding box of its ink, fitted (aspect ratio kept) into a box of 20/28 of the
input's height and width, and placed so that its centre of mass lies at the centre of the input.
An off-centre digit on a large canvas then looks like the digits the model was trained on,
instead of a speck squashed into 28x28. A model with three channels gets the usual photo
preparation: the shorter side resized to the input's, then the centre cropped out.

Resizing is Pillow's (antialiased bilinear: each axis shrinks by averaging, enlarges by
interpolation), on float32 planes, so no precision is lost to 8 bits. Images are read once by
dualnet.data.images (every check of the reliability issue: budgets, bombs, truncation, EXIF
orientation). This is the one preparation: `dn.predict`, `dualnet predict`, `--show-input` and
`dualnet featuremaps` all use load_inputs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..errors import DataError
from . import images
from .images import dark_on_light as needs_inversion  # the rule read_image's users share

__all__ = ["DIGIT_BOX", "INK_LEVEL", "centre_of_mass", "colour_input", "digit_input", "fit_size", "ink_box",
           "load_inputs", "needs_inversion"]

#: the digit's box within the input, as a fraction of its height and width (MNIST: 20 of 28)
DIGIT_BOX = 20 / 28
#: a pixel is ink when it is at least this bright, after the background is subtracted and the
#: brightest pixel scaled to 1 (low enough for anti-aliased strokes, high enough to skip the grain
#: of a photographed page)
INK_LEVEL = 0.3


def ink_box(ink: np.ndarray, level: float = INK_LEVEL) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right), bottom and right exclusive, of the pixels of ink (H, W) at or
    above `level`; None when there are none."""
    rows = np.flatnonzero((ink >= level).any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero((ink >= level).any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def fit_size(height: int, width: int, box_h: int, box_w: int) -> tuple[int, int]:
    """The size (h, w) of a height x width image scaled, aspect ratio kept, to fit box_h x box_w
    and touch it on at least one side; never below 1 pixel."""
    scale = min(box_h / height, box_w / width)
    return max(1, min(box_h, round(height * scale))), max(1, min(box_w, round(width * scale)))


def centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    """(row, column) of the intensity-weighted mean position of img (H, W), in pixel-centre
    coordinates (pixel (0, 0) is at 0.0); the image's centre when it is all zero."""
    total = float(img.sum())
    if total <= 0:
        return (img.shape[0] - 1) / 2, (img.shape[1] - 1) / 2
    rows, cols = np.arange(img.shape[0]), np.arange(img.shape[1])
    return float(img.sum(axis=1) @ rows) / total, float(img.sum(axis=0) @ cols) / total


def digit_input(gray: np.ndarray, size: tuple[int, int] = (28, 28), invert: str = "auto") -> np.ndarray:
    """MNIST-style preparation of gray (H, W) in [0, 1]: float32 (1, h, w) in [0, 1], light on dark.

    invert: "auto" (invert when needs_inversion), "yes" or "no". An image without ink (blank)
    (a uniform image) gives zeros.
    """
    h, w = size
    img = np.asarray(gray, dtype=np.float64)
    if invert == "yes" or (invert == "auto" and needs_inversion(img)):
        img = 1.0 - img
    # the background (the border's median) goes to 0 and the brightest ink to 1, so a grey page
    # or a faint pencil stroke gives the same black-and-white contrast as MNIST
    background = float(np.median(images.border(img)))
    span = float(img.max()) - background
    if span <= 1e-6:  # no ink: nothing is left once the background is taken away
        return np.zeros((1, h, w), np.float32)
    ink = np.clip((img - background) / span, 0.0, 1.0)
    box = ink_box(ink)
    if box is None:  # not reached: the brightest pixel is 1.0, ink at any level
        return _resize(img, h, w)[None].astype(np.float32)
    top, bottom, left, right = box
    fitted = _resize(ink[top:bottom, left:right], *fit_size(bottom - top, right - left,
                                                               max(1, round(h * DIGIT_BOX)),
                                                               max(1, round(w * DIGIT_BOX))))
    cy, cx = centre_of_mass(fitted)
    y0, x0 = round((h - 1) / 2 - cy), round((w - 1) / 2 - cx)
    out = np.zeros((h, w))
    _paste(out, fitted, y0, x0)
    return np.clip(out, 0.0, 1.0)[None].astype(np.float32)


def colour_input(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """rgb (H, W, 3) in [0, 1] -> float32 (3, h, w): the shorter side resized to the input's, the
    centre cropped out (the longer side loses equal parts at both ends, within a pixel)."""
    h, w = size
    height, width = rgb.shape[:2]
    scale = max(h / height, w / width)
    new_h, new_w = max(h, round(height * scale)), max(w, round(width * scale))
    top, left = (new_h - h) // 2, (new_w - w) // 2
    planes = [_resize(rgb[..., c], new_h, new_w)[top:top + h, left:left + w] for c in range(3)]
    return np.clip(np.stack(planes), 0.0, 1.0).astype(np.float32)


def load_inputs(paths: Sequence[str | os.PathLike], shape: Sequence[int], invert: str = "auto") -> np.ndarray:
    """The files prepared for a model whose input is shape (C, H, W): float32 (N, C, H, W) in
    [0, 1]. C == 1: digit_input of each image's luminance; C == 3: colour_input."""
    c, h, w = (int(v) for v in shape)
    if c not in (1, 3):
        raise DataError(f"the model takes inputs of shape {tuple(shape)}; predict prepares 1-channel (digit) "
                        "or 3-channel (RGB) images, of shape (1, H, W) or (3, H, W)")
    if c == 1:
        prepared = [digit_input(images.read_image(p), (h, w), invert) for p in paths]
    else:
        prepared = [colour_input(images.read_rgb(p, (h, w)), (h, w)) for p in paths]
    return np.stack(prepared) if prepared else np.zeros((0, c, h, w), np.float32)


def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """(H, W) float -> (h, w) float64 by Pillow's antialiased bilinear filter on a float32 plane."""
    from PIL import Image

    plane = Image.fromarray(np.ascontiguousarray(img, dtype=np.float32))  # a float32 plane: mode "F"
    return np.asarray(plane.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float64)


def _paste(canvas: np.ndarray, patch: np.ndarray, y0: int, x0: int) -> None:
    """canvas[y0:, x0:] = patch, the parts outside the canvas cut off."""
    ph, pw = patch.shape
    ch, cw = canvas.shape
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(ch, y0 + ph), min(cw, x0 + pw)
    if ys < ye and xs < xe:
        canvas[ys:ye, xs:xe] = patch[ys - y0:ye - y0, xs - x0:xe - x0]
