"""Options and helpers shared by several commands, and the conventions every command follows
(tests/cli/test_conventions.py holds every command to them):

- `--device NAME` defaults to `auto` (a usable GPU, else the CPU: the only fallback) in every
  command that computes; `cuda` and `cuda:N` are accepted as aliases of `gpu` and `gpu:N`.
- The run prints one short line on stderr saying which device it uses; why no GPU is usable (and
  the fix) is `dualnet devices`' to say, never repeated on every CPU run.
- A class count is `--num-classes` (summary's older `--classes` is kept as an alias).
- `--data` names the data; a command that reads data for a checkpoint defaults to the data the
  checkpoint was trained on (`data_option(for_checkpoint=True)`).
- Every option has help text; every command's docstring ends with examples.
- A mistake is one line, `dualnet: error: ...` (exit 2 for usage, 1 otherwise; cli/main.py); the
  library's messages name its parameters in backquotes, which the CLI says as flags (`as_flags`).
- One output rule (issue 20.8): a default output that exists gets a free name (`runs/lenet5-2.h5`,
  `free_default`); an output the user named that exists is refused unless `--overwrite`, the same
  flag with the same help in every command that writes (`named_output`, `overwrite_option`);
  `--resume` goes on writing its own checkpoint and appending to its CSV log; a TensorBoard folder
  may exist (each run adds an event file of its own). Every command that writes ends with one
  `wrote: PATH` line per file (`report_written`), on stderr with --json so that stdout stays JSON.
"""

from __future__ import annotations

import math
import os
import pathlib
import re

import click

import dualnet as dn
from dualnet import outputs

DEVICE_CHOICES = "auto, ref, cpu, gpu, gpu:N or emu"

# library parameters (named in backquotes in dualnet's messages) and the flags that set them
FLAGS = {"clip_grad_norm": "clip-grad", "clip_grad": "clip-grad", "data": "data", "num_classes": "num-classes"}
_PARAM = re.compile(r"`([a-z][a-z0-9_]*)(?:=(\"[^\"`]*\"|'[^'`]*'|[^`\s]*))?`")


def as_flags(message: str) -> str:
    """A library message said as the CLI: each parameter it names in backquotes, `lr` or
    `device="cpu"`, becomes the flag that sets it, --lr or --device cpu."""
    def flag(m: re.Match) -> str:
        name = FLAGS.get(m.group(1), m.group(1).replace("_", "-"))
        value = m.group(2)
        return f"--{name}" if value is None else f"--{name} {value.strip(chr(34) + chr(39))}"
    return _PARAM.sub(flag, message)


def resolve_device(name: str, echo: bool = True) -> dn.Device:
    """The device to use; "auto" is the CLI's only fallback (gpu if usable, else cpu).

    The short line saying which device was chosen is printed now if `echo`, and kept in
    `resolve_device.note` for commands that print it later. Why no GPU is usable, and the fix, is
    `dualnet devices`' to say: a CPU run is normal, not something to explain on every run.
    """
    if name == "auto":
        infos = dn.devices()
        gpus = [d for d in infos if d.name.startswith("gpu") and d.available]
        if gpus:
            dev = dn.use_device(gpus[0].name)
            why = "a CUDA device is available"
        else:
            dev = dn.use_device("cpu")
            why = "no usable GPU: `dualnet devices` says why"
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


def device_option():
    """--device, `auto` by default in every command (the conventions above)."""
    return click.option("--device", default="auto", show_default=True, metavar="NAME",
                        help=f"Where to compute: {DEVICE_CHOICES} (cuda, cuda:N: aliases of gpu, gpu:N).")


DATA_HELP = ("The bundled MNIST, the 8x8 digits, a folder of IDX files, an HDF5 file with images/labels, or a "
             "folder of photos in one subfolder per class.")


def data_option(for_checkpoint: bool = False):
    """--data; a command that reads data for a checkpoint defaults to the data its run recorded
    (dualnet.trained_data), with that run's validation split and class count."""
    if for_checkpoint:
        return click.option("--data", "data_source", default=None, metavar="mnist|digits|PATH",
                            help=DATA_HELP + " [default: the data the checkpoint was trained on, else mnist]")
    return click.option("--data", "data_source", default="mnist", show_default=True, metavar="mnist|digits|PATH",
                        help=DATA_HELP)


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
        fix = exc.fix.replace("choose another path", f"choose another {option}")
        raise outputs.OutputError(f"cannot write {what} to {output}: {exc.reason}; {fix}", exc.reason,
                                  fix=fix) from None


def free_default(path: pathlib.Path, overwrite: bool) -> pathlib.Path:
    """A default output path that replaces no earlier file: `path` itself if it is free (or
    `overwrite`), else `stem-2.suffix`, `stem-3.suffix`, ... (the command prints which)."""
    if overwrite or not os.path.lexists(path):
        return path
    n = 2
    while os.path.lexists(path.with_name(f"{path.stem}-{n}{path.suffix}")):
        n += 1
    return path.with_name(f"{path.stem}-{n}{path.suffix}")


OVERWRITE_HELP = ("Replace an output file you named that already exists (without it that is refused; a default "
                  "output that exists gets a free name, such as runs/lenet5-2.h5).")


def overwrite_option():
    """--overwrite, the same flag with the same help in every command that writes a file."""
    return click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP)


def refuse_existing(output: pathlib.Path | None, option: str, overwrite: bool, named: pathlib.Path | None = None,
                    what: str = "") -> None:
    """The output rule for a path the user named: refuse (one line, exit 2) an `output` that exists
    unless `overwrite`. `named` is the path the user typed when `output` is derived from it (the
    best checkpoint of --out), `what` says which derived file it is."""
    if output is None or overwrite or not os.path.lexists(output):
        return
    given = f"{option} {named}: its {what} {output}" if named is not None else f"{option} {output}"
    raise click.UsageError(f"{given} already exists; add --overwrite to replace it, or choose another path")


def named_output(output: pathlib.Path | None, inputs: list, option: str, overwrite: bool, role: str | None = None,
                 folder: bool = False) -> None:
    """An output path the user named: refuse_replacing_inputs, then (for a file) refuse_existing."""
    refuse_replacing_inputs(output, inputs, option, role, folder)
    if not folder:
        refuse_existing(output, option, overwrite)


def report_written(paths, as_json: bool = False) -> None:
    """The closing lines of every command that writes: `wrote: PATH` for each file it wrote, in
    order, on stdout; with --json on stderr, so that stdout stays pure JSON."""
    for path in paths:
        if path is not None:
            click.echo(f"wrote: {path}", err=as_json)
