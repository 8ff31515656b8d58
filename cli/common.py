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
"""

from __future__ import annotations

import math
import os
import pathlib
import re

import click

import dualnet as dn

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


DATA_HELP = "The bundled MNIST, the 8x8 digits, a folder of IDX files, or an HDF5 file with images/labels."


def data_option(for_checkpoint: bool = False):
    """--data; a command that reads data for a checkpoint defaults to the data its run recorded
    (dualnet.trained_data), with that run's validation split and class count."""
    if for_checkpoint:
        return click.option("--data", "data_source", default=None, metavar="mnist|digits|PATH",
                            help=DATA_HELP + " [default: the data the checkpoint was trained on, else mnist]")
    return click.option("--data", "data_source", default="mnist", show_default=True, metavar="mnist|digits|PATH",
                        help=DATA_HELP)


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


def _same_file(a: pathlib.Path, b: pathlib.Path) -> bool:
    """Whether two paths name one file: equal once resolved, or one inode (a hard link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def refuse_replacing_inputs(output: pathlib.Path | None, inputs: list, option: str) -> None:
    """Refuse (one line, exit 2) an `output` that would replace one of the command's `inputs`:
    the same file (symbolic or hard links included), or any file inside an input folder."""
    if output is None:
        return
    output = pathlib.Path(output)
    for given in inputs:
        if given is None:
            continue
        named = {"mnist": dn.data.bundled_mnist_dir, "digits": dn.data.bundled_digits_dir}.get(str(given))
        inp = named() if named else pathlib.Path(given)
        if inp.is_dir():
            inside = output.resolve().is_relative_to(inp.resolve())
            linked = output.exists() and any(_same_file(output, f) for f in inp.iterdir() if f.is_file())
            if inside or linked:
                raise click.BadParameter(f"{output} is inside the input folder {given} (or a link to one of its "
                                         "files) and would replace it; choose another output file",
                                         param_hint=f"'{option}'")
        elif _same_file(output, inp):
            raise click.BadParameter(f"{output} is the input {given} and would replace it; choose another output "
                                     "file", param_hint=f"'{option}'")


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
