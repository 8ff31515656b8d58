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
                        help="The bundled MNIST, the 8x8 digits, a folder of IDX files, an HDF5 file with "
                             "images/labels, or a folder of photos in one subfolder per class.")


def _image_size(ctx, param, value):
    if value is None:
        return None
    try:
        h, w = (int(v) for v in value.lower().replace("x", ",").split(","))
    except ValueError:
        raise click.BadParameter(f"expected H,W (two integers, e.g. 64,64), got {value!r}") from None
    if not (1 <= h <= 1024 and 1 <= w <= 1024):
        raise click.BadParameter(f"height and width must lie in [1, 1024], got {h},{w}")
    return h, w


FOLDER_PARAMS = ("image_size", "channels", "test_fraction", "strict")


def folder_options(command):
    """--image-size, --channels, --test-fraction and --strict: how a folder of photos is prepared."""
    size = "x".join(map(str, dn.data.DEFAULT_IMAGE_SIZE))
    options = [
        click.option("--image-size", callback=_image_size, default=None, metavar="H,W", show_default=size,
                     help="Image folders: resize every photo to this height and width (centre crop to the aspect "
                          "ratio, then resize)."),
        click.option("--channels", type=click.Choice(["1", "3"]), default=None, callback=lambda c, p, v: v and int(v),
                     show_default="3 if any photo has colour, else 1", help="Image folders: gray (1) or RGB (3)."),
        click.option("--test-fraction", type=click.FloatRange(0, 1, max_open=True), default=None,
                     show_default=str(dn.data.DEFAULT_TEST_FRACTION),
                     help="Image folders without a test/ subfolder: the stratified share of each class held out "
                          "for testing (seeded, the same for every run)."),
        click.option("--strict", is_flag=True, help="Image folders: refuse unreadable images, not skip them."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def check_folder_options(ctx: click.Context, data_source) -> None:
    """Refuse the image folder options for data that is not a folder of photos."""
    from click.core import ParameterSource

    typed = [p for p in FOLDER_PARAMS if ctx.get_parameter_source(p) == ParameterSource.COMMANDLINE]
    if not typed:
        return
    path = pathlib.Path(str(data_source)).expanduser()
    from dualnet.data.folders import looks_like_image_folder

    if not (path.is_dir() and looks_like_image_folder(path)):
        raise click.UsageError(f"--{typed[0].replace('_', '-')} applies to a folder of photos in class subfolders, "
                               f"not to --data {data_source}", ctx=ctx)


def preparation_line(source, preparation: dict) -> str:
    """One line: how an image folder's photos were prepared."""
    h, w = preparation.get("size", ("?", "?"))
    kind = "RGB" if preparation.get("channels") == 3 else "gray"
    return (f"images: {source} prepared at {h}x{w} {kind} (--image-size, default "
            f"{'x'.join(map(str, dn.data.DEFAULT_IMAGE_SIZE))}; --channels, default RGB if any photo has colour)")


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
