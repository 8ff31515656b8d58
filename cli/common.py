"""Options and helpers shared by several commands."""

from __future__ import annotations

import math

import click

import dualnet as dn

DEVICE_CHOICES = "auto, ref, cpu, gpu, gpu:N or emu"


def resolve_device(name: str, echo: bool = True) -> dn.Device:
    """The device to use; "auto" is the CLI's only fallback (gpu if usable, else cpu).

    The line saying which device was chosen (and why, for auto) is printed now if `echo`, and
    kept in `resolve_device.note` for commands that print it later.
    """
    if name == "auto":
        infos = dn.devices()
        gpus = [d for d in infos if d.name.startswith("gpu") and d.available]
        if gpus:
            dev = dn.use_device(gpus[0].name)
            why = "a CUDA device is available"
        else:
            dev = dn.use_device("cpu")
            reason = next((d.reason for d in infos if d.name.startswith("gpu")), "")
            why = f"no usable GPU: {reason}"
        resolve_device.note = f"device: {dev.name} (auto; {why})"
        if echo:
            click.echo(resolve_device.note, err=True)
        return dev
    try:
        dev = dn.use_device(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--device'") from None
    resolve_device.note = f"device: {dev.name}"
    if echo:
        click.echo(resolve_device.note, err=True)
    return dev


resolve_device.note = ""


def device_option(default: str = "auto"):
    return click.option("--device", default=default, show_default=True, metavar="NAME",
                        help=f"Where to compute: {DEVICE_CHOICES}.")


def data_option():
    return click.option("--data", "data_source", default="mnist", show_default=True, metavar="mnist|PATH",
                        help="The bundled MNIST, a folder of IDX files, or an HDF5 file with images/labels.")


def _what(value) -> str:
    return "a finite number" if isinstance(value, float) else "an integer"


def positive(ctx, param, value):
    """Option callback: a number > 0, finite if a float (None passes: an unset optional value)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"must be {_what(value)} > 0, got {value}")
    return value


def non_negative(ctx, param, value):
    """Option callback: a number >= 0, finite if a float."""
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise click.BadParameter(f"must be {_what(value)} >= 0, got {value}")
    return value
