"""`dualnet plot`, `dualnet filters`, `dualnet featuremaps`: pictures of checkpoints (need matplotlib)."""

from __future__ import annotations

import pathlib

import click

from dualnet import checkpoint
from dualnet.data.image_decode import FORMATS_TEXT

from .common import data_option, free_default, named_output, overwrite_option, report_written

CKPT = click.Path(exists=False, dir_okay=False, path_type=pathlib.Path)
PNG = click.Path(dir_okay=False, path_type=pathlib.Path)


def _beside(ckpt: pathlib.Path, kind: str, overwrite: bool) -> pathlib.Path:
    """`runs/lenet5.h5` -> `runs/lenet5.<kind>.png`, or `...<kind>-2.png` if that exists (no
    picture replaces an earlier one unless --overwrite)."""
    return free_default(ckpt.with_name(f"{ckpt.stem}.{kind}.png"), overwrite)


def _require_matplotlib() -> None:
    from dualnet.plots import require_matplotlib

    require_matplotlib()


@click.command()
@click.argument("ckpts", nargs=-1, required=True, type=CKPT, metavar="CKPT...")
@click.option("-o", "--out", type=PNG, default=None,
              help="PNG to write [default: <first CKPT stem>.curves.png beside it].")
@click.option("--label", "labels", multiple=True, metavar="TEXT",
              help="Legend label of each checkpoint, in order (repeat once per CKPT).")
@overwrite_option()
def plot(ckpts, out, labels, overwrite):
    """Training curves (loss and accuracy per epoch, train and validation) of checkpoints.

    Several checkpoints share one figure, one colour per run.

    \b
    Examples:
      dualnet plot runs/lenet5.h5
      dualnet plot runs/sgd.h5 runs/adam.h5 --label SGD --label Adam -o compare.png
    """
    _require_matplotlib()
    from dualnet import plots

    if labels and len(labels) != len(ckpts):
        raise click.BadParameter(f"got {len(labels)} labels for {len(ckpts)} checkpoints; give one per CKPT "
                                 "or none", param_hint="'--label'")
    named_output(out, list(ckpts), "--out", overwrite)
    out = out or _beside(ckpts[0], "curves", overwrite)
    fig = plots.training_curves(list(ckpts), labels=list(labels) or None)
    report_written([plots.save_figure(fig, out)])


@click.command()
@click.argument("ckpt", type=CKPT)
@click.option("--layer", default="conv1", show_default=True, metavar="NAME|INDEX",
              help="The Conv2d to show, by name (see `dualnet summary`) or position in the model.")
@click.option("-o", "--out", type=PNG, default=None, help="PNG to write [default: <CKPT stem>.filters.png].")
@overwrite_option()
def filters(ckpt, layer, out, overwrite):
    """The learned kernels of one convolution layer, on one colour scale around 0.

    \b
    Examples:
      dualnet filters runs/lenet5.h5
      dualnet filters runs/lenet5.h5 --layer conv2 -o conv2.png
    """
    _require_matplotlib()
    from dualnet import plots

    named_output(out, [ckpt], "--out", overwrite)
    model = checkpoint.read(ckpt, device="cpu").model
    which = int(layer) if layer.lstrip("-").isdigit() else layer
    out = out or _beside(ckpt, "filters", overwrite)
    report_written([plots.save_figure(plots.filters(model, which), out)])


@click.command(help=f"""Activation maps of one image after each convolution and pooling stage.

    Give an IMAGE file ({FORMATS_TEXT}; prepared exactly as `dualnet predict` prepares it) or --index N.

    \b
    Examples:
      dualnet featuremaps runs/lenet5.h5 --index 0
      dualnet featuremaps runs/lenet5.h5 digit.png -o digit-maps.png
    """)
@click.argument("ckpt", type=CKPT)
@click.argument("image", required=False, type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@click.option("--index", type=click.IntRange(0), default=None, metavar="N",
              help="Use image number N of the data split instead of an IMAGE file.")
@data_option(for_checkpoint=True)
@click.option("--split", type=click.Choice(["test", "val", "train", "all-train"]), default="test", show_default=True,
              help="The split --index counts in.")
@click.option("--invert", type=click.Choice(["auto", "yes", "no"]), default="auto", show_default=True,
              help="Invert a dark-on-light IMAGE to MNIST's light-on-dark (auto: by the border).")
@click.option("-o", "--out", type=PNG, default=None, help="PNG to write [default: <CKPT stem>.featuremaps.png].")
@overwrite_option()
def featuremaps(ckpt, image, index, data_source, split, invert, out, overwrite):
    if (image is None) == (index is None):
        raise click.UsageError("give exactly one of IMAGE or --index N")
    _require_matplotlib()
    from dualnet import plots

    model = checkpoint.load(ckpt, device="cpu")  # with its metadata: the data it was trained on
    if index is not None:
        from dualnet.trained_data import trained_on

        data_source = data_source or trained_on(model)["data"] or "mnist"
    named_output(out, [ckpt, image, data_source if index is not None else None], "--out", overwrite)
    label = None
    if image is not None:
        from dualnet import inference

        x = inference.prepare_inputs(model, [str(image)], invert)[0]  # predict's own preparation
    else:
        from dualnet.trained_data import load_data_for

        dataset = load_data_for(model, split, data_source, limit=index + 1, model_name=f"the model in {ckpt}",
                                data_param="--data")
        if index >= len(dataset):
            raise click.BadParameter(f"the {split} split of {dataset.name} holds {len(dataset):,} images; "
                                     f"N must be below that", param_hint="'--index'")
        x, label = dataset.images[index], int(dataset.labels[index])
    out = out or _beside(ckpt, "featuremaps", overwrite)
    report_written([plots.save_figure(plots.feature_maps(model, x, label=label), out)])


COMMANDS = [plot, filters, featuremaps]
