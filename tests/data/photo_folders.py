"""Image folders forged for the folder tests: JPEG and PNG photos of two or three classes that a small
network can tell apart (each class its own colour and stripe direction), in mixed sizes, colour and
gray, with a corrupt file, an EXIF-rotated photo, a hidden file and a stray text file."""

from __future__ import annotations

import pathlib

import numpy as np

CLASSES = ("cat", "dog", "owl")
# a distinct colour per class, and a pattern that survives any resize: stripes one way or the other
COLOURS = {"cat": (220, 60, 40), "dog": (40, 180, 60), "owl": (50, 70, 210)}


def picture(label: str, height: int, width: int, seed: int, gray: bool = False) -> np.ndarray:
    """uint8 (H, W, 3) (or (H, W) when gray): the class's colour with its stripes, plus noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    k = CLASSES.index(label) if label in CLASSES else sum(map(ord, label)) % 3
    stripes = ((x if k == 0 else y if k == 1 else x + y) * 6 // max(height, width)) % 2
    base = np.array(COLOURS[CLASSES[k]], np.float64)
    img = base * (0.55 + 0.45 * stripes[..., None]) + rng.normal(0, 8, (height, width, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    if gray:
        return np.round(img @ np.array([0.299, 0.587, 0.114])).clip(0, 255).astype(np.uint8)
    return img


def save(path: pathlib.Path, pixels: np.ndarray, fmt: str | None = None, exif_orientation: int | None = None):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(pixels)
    kwargs = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    im.save(path, format=fmt, **kwargs)


def make_folder(root: pathlib.Path, per_class: int = 6, classes=CLASSES[:2], gray_only: bool = False,
                extras: bool = True, layout: str = "flat") -> pathlib.Path:
    """A photo folder under root: per_class images of each class, alternately JPEG and PNG, sizes
    from 20x24 to 41x37, some gray. extras adds a corrupt JPEG, a stray text file, a hidden file and
    an EXIF-rotated JPEG. layout "flat" (root/<class>/) or "split" (root/train|test/<class>/)."""
    for ci, label in enumerate(classes):
        for i in range(per_class):
            part = "" if layout == "flat" else ("test" if i % 3 == 2 else "train")
            folder = root / part / label
            h, w = 20 + (i * 7) % 22, 24 + (i * 5) % 14
            gray = gray_only or (i % 4 == 3)
            ext = "png" if i % 2 else "jpg"
            save(folder / f"{label}_{i:02d}.{ext}", picture(label, h, w, seed=100 * ci + i, gray=gray))
    if extras:
        first = root / ("" if layout == "flat" else "train") / classes[0]
        (first / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
        (first / "notes.txt").write_text("not an image\n")
        (first / ".hidden.png").write_bytes(b"\x89PNG\r\n\x1a\n broken but hidden")
        tall = picture(classes[0], 40, 24, seed=999)
        # stored lying on its side; EXIF orientation 6 (rotate 90 clockwise to view) puts it upright
        save(first / "rotated.jpg", np.ascontiguousarray(np.rot90(tall, 1)), exif_orientation=6)
    return root
