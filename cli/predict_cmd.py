"""`dualnet predict`: classify image files with a trained checkpoint."""

from __future__ import annotations

import json
import pathlib

import click
import numpy as np

import dualnet as dn
from dualnet import checkpoint, outputs
from dualnet.data import prepare

from .common import device_option, refuse_replacing_inputs, resolve_device

CKPT = click.Path(exists=False, dir_okay=False, path_type=pathlib.Path)
#: below this top probability the answer comes with a hint that the image may not be one of the classes
LOW_CONFIDENCE = 0.5
#: --show-input draws each prepared input at least this many pixels high
SHOW_HEIGHT = 112


def class_names(metadata: dict, k: int) -> list[str]:
    """The checkpoint's class names (metadata "class_names", K strings), else "0" .. "K-1"."""
    names = metadata.get("class_names")
    if isinstance(names, list) and len(names) == k and all(isinstance(n, str) for n in names):
        return names
    return [str(i) for i in range(k)]


def hint(top_probability: float, channels: int) -> str | None:
    """A one-line hint when the top probability is low, else None."""
    if top_probability >= LOW_CONFIDENCE:
        return None
    kind = ("a single handwritten digit, dark on light or light on dark, on a plain background"
            if channels == 1 else "one object of the model's classes, filling most of the picture")
    return (f"the top probability is only {top_probability:.0%}: the image may not show any of the model's "
            f"classes (this model expects {kind}); --show-input FILE.png shows what the model saw")


def save_inputs_png(x: np.ndarray, path: pathlib.Path) -> None:
    """x (N, C, H, W) in [0, 1], C = 1 or 3: one PNG, the inputs side by side with a 2-pixel gap,
    each enlarged by a whole factor (nearest pixel) to at least SHOW_HEIGHT pixels high."""
    from PIL import Image

    n, c, h, w = x.shape
    scale = max(1, -(-SHOW_HEIGHT // h))
    big = np.repeat(np.repeat(x, scale, axis=2), scale, axis=3)
    gap = 2
    strip = np.full((c, h * scale, n * (w * scale + gap) - gap), 0.5, np.float32)
    for i in range(n):
        strip[:, :, i * (w * scale + gap):i * (w * scale + gap) + w * scale] = big[i]
    pixels = np.round(np.clip(strip, 0, 1) * 255).astype(np.uint8)
    image = Image.fromarray(pixels[0] if c == 1 else np.ascontiguousarray(pixels.transpose(1, 2, 0)))
    with outputs.writing(path, "--show-input picture") as f:
        image.save(f, format="PNG")


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def _table(names: list[str], p: np.ndarray, order: np.ndarray) -> list[str]:
    width = max(5, *(len(names[k]) for k in order))
    lines = [f"  rank  {'class':>{width}}  probability"]
    lines += [f"  {r:>4}  {names[k]:>{width}}  {p[k]:>11.1%}" for r, k in enumerate(order, 1)]
    return lines


@click.command()
@click.argument("ckpt", type=CKPT)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=pathlib.Path))
@device_option(default="cpu")
@click.option("--top", type=click.IntRange(1), default=3, show_default=True, help="How many classes to list.")
@click.option("--invert", type=click.Choice(["auto", "yes", "no"]), default="auto", show_default=True,
              help="Digit models: invert dark-on-light images to MNIST's light-on-dark (auto: by the border).")
@click.option("--show-input", "show_path", type=click.Path(dir_okay=False, path_type=pathlib.Path), default=None,
              help="Write the prepared inputs (what the model sees) side by side to this PNG.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per image.")
def predict(ckpt, files, device, top, invert, show_path, as_json):
    """Classify images (PNG, JPEG, BMP, GIF, WebP, PGM/PPM or .npy) with a trained checkpoint.

    \b
    Digit models (1 input channel): the digit is cropped to its ink, fitted into
    20/28 of the input keeping its shape, centred by mass, and made light on dark,
    as MNIST's digits were. Colour models (3 channels): the shorter side is resized
    to the input's and the centre cropped out; a checkpoint's normalization
    (metadata "normalization": per-channel mean and std) is applied.

    \b
    Examples:
      dualnet predict runs/lenet5.h5 digit.png other.npy
      dualnet predict runs/resnet8.h5 cat.jpg --top 5 --show-input seen.png
    """
    refuse_replacing_inputs(show_path, [ckpt, *files], "--show-input")
    dev = resolve_device(device, echo=False)
    model = checkpoint.load(ckpt, device=dev.name)
    shape = tuple(model.input_shape or (1, 28, 28))
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise click.ClickException(f"{ckpt}: the model takes inputs of shape {shape}; predict prepares 1-channel "
                                   "(digit) or 3-channel (RGB) images, of shape (1, H, W) or (3, H, W)")
    if shape[0] == 3 and invert != "auto":
        raise click.UsageError(f"--invert {invert} applies to digit (1-channel) models; {ckpt} takes RGB images")
    x = prepare.load_inputs([str(f) for f in files], shape, invert)
    if show_path is not None:
        save_inputs_png(x, show_path)
    metadata = getattr(model, "metadata", None) or {}
    norm = dn.data.model_normalization(model)
    if norm is not None:  # the training run's per-channel normalization, by the function training used
        x = dn.data.normalize(x, dn.data.check_normalization(norm, shape[0], f"{ckpt}: metadata"))
    params = list(model.parameters())
    x = x.astype(params[0].data.dtype if params else np.float32)  # a float64/float16 checkpoint takes its dtype
    model.eval()
    probs = _softmax(dn.to_numpy(model(dn.to_device(x, dev))))
    names = class_names(metadata, probs.shape[1])
    for f, p in zip(files, probs):
        order = np.argsort(-p, kind="stable")[:top]
        note = hint(float(p[order[0]]), shape[0])
        if as_json:
            click.echo(json.dumps({"file": str(f), "class": int(order[0]), "name": names[order[0]],
                                   "top": [{"class": int(k), "name": names[k], "probability": float(p[k])}
                                           for k in order], "hint": note}))
            continue
        click.echo(f"{f}: {names[order[0]]}  ({p[order[0]]:.1%})")
        for line in _table(names, p, order):
            click.echo(line)
        if note is not None:
            click.echo(f"  hint: {note}")
    if show_path is not None and not as_json:
        click.echo(f"prepared input: {show_path}")


COMMANDS = [predict]
