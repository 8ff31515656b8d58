"""Options and helpers shared by several commands."""

from __future__ import annotations

import math
import pathlib

import click

import dualnet as dn
from dualnet import outputs

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
    return click.option("--data", "data_source", default="mnist", show_default=True, metavar="mnist|digits|PATH",
                        help="The bundled MNIST, the 8x8 digits, a folder of IDX files, or an HDF5 file with "
                             "images/labels.")


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


def declare_inputs(inputs: list, resumed: pathlib.Path | None = None) -> None:
    """Tell the guarded writer (dualnet.outputs) the command's inputs (data sources by name too);
    `resumed` is the checkpoint --resume continues, which the run's checkpoint may replace."""
    from dualnet.run import data_paths

    for given in inputs:
        if given is not None:
            for path in data_paths(given):
                outputs.declare_input(path, f"input {'folder ' if path.is_dir() else ''}{given}")
    if resumed is not None:
        outputs.declare_input(resumed, f"resumed checkpoint {resumed}", rewritable_by="checkpoint")


WHAT = {"checkpoint": "checkpoint", "best-checkpoint": "checkpoint", "early-stop-copy": "early-stop copy",
        "csv-log": "CSV log", "tensorboard": "TensorBoard folder", "onnx": "ONNX file"}


def refuse_replacing_inputs(output: pathlib.Path | None, inputs: list, option: str, role: str | None = None,
                            folder: bool = False) -> None:
    """Refuse (one line) an `output` that would replace one of the command's `inputs` (the same
    file, symbolic or hard links included, or any file inside an input folder) or another of its
    outputs (exit 2, naming `option`), or that is a directory, FIFO or device, or lies under a file
    (exit 1); else declare it as the output `role` (default: the option's name) of the command
    (dualnet.outputs)."""
    declare_inputs(inputs)
    if output is None:
        return
    try:
        outputs.declare_output(output, role or option, option, folder=folder)
    except outputs.OutputError as exc:
        if exc.collision:
            raise click.BadParameter(str(exc), param_hint=f"'{option}'") from None
        what = WHAT.get(role or "", "picture" if str(output).lower().endswith(".png") else "output")
        raise outputs.OutputError(f"cannot write {what} to {output}: {exc.reason}; choose another {option}",
                                  exc.reason) from None


def free_default(path: pathlib.Path, overwrite: bool) -> pathlib.Path:
    """A default output path that replaces no earlier file: `path` itself if it is free (or
    `overwrite`), else `stem-2.suffix`, `stem-3.suffix`, ... (the command prints which)."""
    if overwrite or not path.exists():
        return path
    n = 2
    while path.with_name(f"{path.stem}-{n}{path.suffix}").exists():
        n += 1
    return path.with_name(f"{path.stem}-{n}{path.suffix}")


def overwrite_option():
    return click.option("--overwrite", is_flag=True, help="Replace an existing output file of the same name.")
