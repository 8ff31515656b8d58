"""`dualnet devices`, `dualnet models`, `dualnet summary`."""

from __future__ import annotations

import pathlib

import click

import dualnet as dn
from dualnet.sizes import build_within


@click.command()
def devices() -> None:
    """List every device, whether it is available, and why not.

    \b
    Example:
      dualnet devices
    """
    for d in dn.devices():
        state = "available" if d.available else "unavailable"
        detail = d.description if d.available else d.reason
        click.echo(f"{d.name:<6} {state:<11}  {detail}")


@click.command()
def models() -> None:
    """List the models `dualnet train --model` accepts.

    \b
    Example:
      dualnet models
    """
    for name in dn.models.names():
        params = dn.models.get(name).num_parameters()
        click.echo(f"{name:<17} {params:>9,} params  {dn.models.describe(name)}")


def _input_shape(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int, int] | None:
    """--input-shape C,H,W -> (C, H, W): three positive ints."""
    if value is None:
        return None
    parts = value.replace("x", ",").split(",")
    try:
        shape = tuple(int(v) for v in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise click.BadParameter(f"must be C,H,W, three positive integers (e.g. 3,32,32), got {value!r}")
    return shape  # type: ignore[return-value]


def _is_checkpoint_argument(target: str) -> bool:
    """A model name, or else a checkpoint: an existing file, or a name that looks like a path."""
    if target in dn.models.names():
        return False
    path = pathlib.Path(target)
    return path.exists() or path.suffix in (".h5", ".hdf5") or len(path.parts) > 1


@click.command()
@click.argument("target", default="lenet5", metavar="MODEL|CHECKPOINT")
@click.option("--input-shape", callback=_input_shape, metavar="C,H,W",
              help="Input shape for a MODEL name (default: the model's own, e.g. 1,28,28 for lenet5).")
@click.option("--classes", type=click.IntRange(min=1), default=None, metavar="K",
              help="Number of classes for a MODEL name (default: 10).")
def summary(target: str, input_shape: tuple[int, int, int] | None, classes: int | None) -> None:
    """Print a model's layers, output shapes and parameter counts: a zoo MODEL built for
    --input-shape and --classes, or the model stored in a CHECKPOINT, with its stored input shape.

    \b
    Examples:
      dualnet summary lenet5-separable
      dualnet summary resnet8 --input-shape 3,32,32 --classes 5
      dualnet summary runs/lenet5.h5
    """
    if _is_checkpoint_argument(target):
        if input_shape is not None or classes is not None:
            raise click.UsageError(f"--input-shape and --classes apply to a MODEL name; the checkpoint {target} "
                                   "holds its model with its stored shape")
        ckpt = dn.checkpoint.read(target, device="cpu")
        model = ckpt.model
        spec = model.spec.get("name", "a custom model") if isinstance(model.spec, dict) else "a custom model"
        shape = "x".join(map(str, model.input_shape)) if model.input_shape else "not stored"
        done = len(ckpt.history)
        trained = f", {done} epoch{'' if done == 1 else 's'} trained" if done else ""
        click.echo(f"{target}: {spec}, input {shape}, {ckpt.attrs.get('dtype', 'float32')}{trained} "
                   f"(checkpoint format {ckpt.attrs.get('format_version')})")
        model.summary()
        return
    if target not in dn.models.names():
        raise click.BadParameter(f"unknown model {target!r}; choose one of {', '.join(dn.models.names())}, or give "
                                 "a checkpoint file", param_hint="'MODEL|CHECKPOINT'")
    kwargs: dict = {}
    if input_shape is not None:
        kwargs["input_shape"] = input_shape
    if classes is not None:
        kwargs["num_classes"] = classes
    # a model too small for the input raises ValueError naming the layer, the shape it would get
    # and the models that fit: one line (cli/main.py); one too large is refused from its weights' shapes,
    # before they are allocated (dualnet.sizes)
    given = " and ".join(o for o, v in (("--input-shape", input_shape), ("--classes", classes)) if v is not None)
    what = f"{target}" + (f" for {'x'.join(map(str, input_shape))} inputs" if input_shape else "") + \
        (f" with {classes:,} classes" if classes is not None else "")
    build_within(lambda: dn.models.get(target, **kwargs), what, given or "model").summary()


COMMANDS = [devices, models, summary]
