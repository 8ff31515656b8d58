"""`dualnet gradcheck`: the public gradient check on random geometries, from the shell."""

from __future__ import annotations

import click
import numpy as np

import dualnet as dn
from dualnet import layers as L

from .common import device_option, positive, resolve_device


def _cases(name: str, rng: np.random.Generator):
    """(layer, input) for one random valid geometry of layer `name`."""
    n = int(rng.integers(1, 4))
    if name == "conv2d":
        g = int(rng.integers(1, 3))
        cin, cout = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        s, p, d = int(rng.integers(1, 3)), int(rng.integers(0, 3)), int(rng.integers(1, 3))
        size = max(d * (max(k) - 1) + 1, 3) + int(rng.integers(0, 8))
        return L.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, seed=int(rng.integers(1 << 30))), \
            rng.uniform(-1, 1, (n, cin, size, size))
    if name in ("maxpool2d", "avgpool2d"):
        k = int(rng.integers(1, 4))
        cls = L.MaxPool2d if name == "maxpool2d" else L.AvgPool2d
        size = k + int(rng.integers(0, 8))
        x = dn.testing.tie_free((n, 2, size, size), int(rng.integers(1 << 30)))
        return cls(k, int(rng.integers(1, 3)), int(rng.integers(0, k // 2 + 1))), x
    if name == "linear":
        i, o = int(rng.integers(1, 20)), int(rng.integers(1, 20))
        return L.Linear(i, o, seed=int(rng.integers(1 << 30))), rng.uniform(-1, 1, (n, i))
    if name in ("relu", "tanh", "sigmoid"):
        cls = {"relu": L.ReLU, "tanh": L.Tanh, "sigmoid": L.Sigmoid}[name]
        x = rng.uniform(0.01, 2, (n, 7)) * rng.choice([-1, 1], (n, 7))
        return cls(), x
    if name == "dropout":
        return L.Dropout(float(rng.uniform(0, 0.8)), seed=int(rng.integers(1 << 30))), rng.uniform(-1, 1, (n, 9))
    raise click.BadParameter(f"unknown layer {name!r}", param_hint="'--layer'")


LAYERS = ("conv2d", "maxpool2d", "avgpool2d", "linear", "relu", "tanh", "sigmoid", "dropout", "loss")


@click.command()
@click.option("--layer", type=click.Choice(LAYERS + ("all",)), default="all", show_default=True,
              help="The layer type to check (all: every one).")
@device_option()
@click.option("--examples", type=click.IntRange(1, 10000), default=5, show_default=True,
              help="Random geometries per layer.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Seed of the random geometries and inputs.")
@click.option("--rtol", type=float, default=1e-6, show_default=True, callback=positive,
              help="Largest accepted relative error (a finite number > 0).")
def gradcheck(layer, device, examples, seed, rtol):
    """Check every layer's backward against float64 central differences.

    Prints the worst relative error per layer; exits 1 if any exceeds --rtol.

    \b
    Examples:
      dualnet gradcheck
      dualnet gradcheck --layer conv2d --device emu --examples 20
    """
    dev = resolve_device(device)
    rng = np.random.default_rng(seed)
    names = LAYERS if layer == "all" else (layer,)
    failed = False
    click.echo(f"{'layer':<10} {'examples':>8}  {'worst rel err':>13}  result")
    for name in names:
        worst, where = 0.0, ""
        for _ in range(examples):
            if name == "loss":
                k, n = int(rng.integers(2, 11)), int(rng.integers(1, 5))
                logits = dn.to_device(rng.uniform(-5, 5, (n, k)), dev)
                labels = dn.to_device(rng.integers(0, k, n), dev)
                report = dn.gradcheck(dn.losses.SoftmaxCrossEntropy(), logits, labels=labels, rtol=rtol,
                                      raise_on_failure=False)
            else:
                with dn.device(dev):
                    lay, x = _cases(name, rng)
                report = dn.gradcheck(lay, dn.to_device(x, dev), rtol=rtol, raise_on_failure=False)
            for r in report.results:
                if r.worst_error >= worst:
                    worst, where = r.worst_error, f"{r.name} {r.where}"
        ok = worst <= rtol
        failed |= not ok
        click.echo(f"{name:<10} {examples:>8}  {worst:>13.2e}  {'ok' if ok else 'FAILED at ' + where}")
    if failed:
        raise click.ClickException(f"gradient check failed (rtol {rtol:g}) on {dev.name}")
    click.echo(f"all gradients match on {dev.name} (rtol {rtol:g})")


COMMANDS = [gradcheck]
