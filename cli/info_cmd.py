"""`dualnet devices`, `dualnet models`, `dualnet summary`."""

from __future__ import annotations

import click

import dualnet as dn


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


@click.command()
@click.argument("model", default="lenet5")
def summary(model: str) -> None:
    """Print a model's layers, output shapes and parameter counts.

    \b
    Example:
      dualnet summary lenet5-separable
    """
    if model not in dn.models.names():
        raise click.BadParameter(f"unknown model {model!r}; choose one of {', '.join(dn.models.names())}",
                                 param_hint="'MODEL'")
    dn.models.get(model).summary()


COMMANDS = [devices, models, summary]
