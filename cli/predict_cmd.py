"""`dualnet predict`: classify image files with a trained checkpoint."""

from __future__ import annotations

import json
import pathlib

import click
import numpy as np

import dualnet as dn
from dualnet import checkpoint, inference, outputs
from dualnet.data.images import FORMATS_TEXT

from .common import device_option, named_output, overwrite_option, report_written, resolve_device

CKPT = click.Path(exists=False, dir_okay=False, path_type=pathlib.Path)
#: --show-input draws each prepared input at least this many pixels high
SHOW_HEIGHT = 112


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


def _table(top: list[tuple[int, str, float]]) -> list[str]:
    width = max(5, *(len(name) for _, name, _ in top))
    lines = [f"  rank  {'class':>{width}}  probability"]
    lines += [f"  {r:>4}  {name:>{width}}  {p:>11.1%}" for r, (_, name, p) in enumerate(top, 1)]
    return lines


@click.command(help=f"""Classify images ({FORMATS_TEXT}) with a trained checkpoint.

    \b
    A model trained on a folder of photos: each file prepared as the folder's
    photos were (upright by EXIF, centre crop, resize). Other digit models (1
    input channel): the digit is cropped to its ink, fitted into
    20/28 of the input keeping its shape, centred by mass, and made light on dark,
    as MNIST's digits were; a blank image gets "no ink found". Colour models
    (3 channels): the shorter side is resized to the input's and the centre cropped
    out; a checkpoint's normalization (metadata "normalization": per-channel mean
    and std) is applied. The library's dn.predict does the same.

    \b
    Examples:
      dualnet predict runs/lenet5.h5 digit.png other.npy
      dualnet predict runs/resnet8.h5 cat.jpg --top 5 --show-input seen.png
    """)
@click.argument("ckpt", type=CKPT)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=pathlib.Path))
@device_option()
@click.option("--top", type=click.IntRange(1), default=3, show_default=True, help="How many classes to list.")
@click.option("--invert", type=click.Choice(["auto", "yes", "no"]), default="auto", show_default=True,
              help="Digit models: invert dark-on-light images to MNIST's light-on-dark (auto: by the border).")
@click.option("--show-input", "-o", "--out", "show_path", default=None,
              type=click.Path(dir_okay=False, path_type=pathlib.Path),
              help="Write the prepared inputs (what the model sees) side by side to this PNG.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per image.")
@overwrite_option()
def predict(ckpt, files, device, top, invert, show_path, as_json, overwrite):
    named_output(show_path, [ckpt, *files], "--show-input", overwrite)
    dev = resolve_device(device, echo=False)
    model = checkpoint.load(ckpt, device=dev.name)
    try:
        shape = inference.input_shape(model)
    except dn.DataError as exc:
        raise click.ClickException(f"{ckpt}: {exc}") from None
    if shape[0] == 3 and invert != "auto":
        raise click.UsageError(f"--invert {invert} applies to digit (1-channel) models; {ckpt} takes RGB images")
    norm = dn.data.model_normalization(model)
    if norm is not None:  # checked here too, so a bad one is reported against the checkpoint's file
        dn.data.check_normalization(norm, shape[0], f"{ckpt}: metadata")
    x = inference.prepare_inputs(model, [str(f) for f in files], invert)
    if show_path is not None:
        save_inputs_png(x, show_path)
    for f, answer in zip(files, inference.predict(model, x, top=top)):
        if as_json:
            click.echo(json.dumps({"file": str(f), "class": answer.label, "name": answer.name,
                                   "top": [{"class": k, "name": name, "probability": p} for k, name, p in answer.top],
                                   "hint": answer.hint}))
            continue
        if not answer.top:
            click.echo(f"{f}: {answer.hint}")
            continue
        click.echo(f"{f}: {answer.name}  ({answer.probability:.1%})")
        for line in _table(answer.top):
            click.echo(line)
        if answer.hint is not None:
            click.echo(f"  hint: {answer.hint}; --show-input FILE.png shows what the model saw")
    report_written([show_path], as_json)


COMMANDS = [predict]
