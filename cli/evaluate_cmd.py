"""`dualnet evaluate`: accuracy of a trained checkpoint (`dualnet predict` is in predict_cmd.py)."""

from __future__ import annotations

import json
import pathlib

import click
import numpy as np

import dualnet as dn
from dualnet import checkpoint
from dualnet.trained_data import load_data_for, trained_on

from .common import data_option, device_option, named_output, overwrite_option, report_written, resolve_device

CKPT = click.Path(exists=False, dir_okay=False, path_type=pathlib.Path)


def format_confusion(confusion: np.ndarray) -> str:
    k = confusion.shape[0]
    width = max(5, len(f"{confusion.max():,}") + 1)
    head = "true\\pred" + "".join(f"{j:>{width}}" for j in range(k))
    rows = [f"{i:>9}" + "".join(f"{v:>{width}}" for v in confusion[i]) for i in range(k)]
    return "\n".join([head] + rows)


@click.command()
@click.argument("ckpt", type=CKPT)
@data_option(for_checkpoint=True)
@device_option()
@click.option("--split", type=click.Choice(["test", "val", "train", "all-train"]), default="test", show_default=True,
              help="Which split of the data to evaluate (val: the run's validation images).")
@click.option("--limit", type=click.IntRange(1), default=None, help="Evaluate only the first N images.")
@click.option("--batch-size", type=click.IntRange(1), default=1000, show_default=True,
              help="Images per forward pass (lower it if the GPU runs out of memory).")
@click.option("--validation", type=click.IntRange(0), default=None, show_default="the run's",
              help="How many trailing training images form the val split (default: the run's `train --validation`, "
                   "else a sixth, at most 10000).")
@click.option("--stream", is_flag=True, help="Read an HDF5 file's images batch by batch instead of loading them.")
@click.option("--plot", "-o", "--out", "plot_path", default=None,
              type=click.Path(dir_okay=False, path_type=pathlib.Path),
              help="Write the confusion matrix and the worst mistakes to this PNG (needs matplotlib).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@overwrite_option()
def evaluate(ckpt, data_source, device, split, limit, batch_size, validation, stream, plot_path, as_json, overwrite):
    """Accuracy, per-class accuracy and confusion matrix of a checkpoint.

    \b
    Examples:
      dualnet evaluate runs/lenet5.h5
      dualnet evaluate runs/lenet5.h5 --split val --device gpu --plot confusion.png
    """
    if plot_path is not None:
        from dualnet.plots import require_matplotlib
        require_matplotlib()
    dev = resolve_device(device, echo=False)
    model = checkpoint.load(ckpt, device=dev.name)
    named_output(plot_path, [ckpt, data_source or trained_on(model)["data"] or "mnist"], "--plot", overwrite)
    # a folder of photos is prepared as the run prepared it (image size, channels, test fraction)
    stored = (getattr(model, "metadata", None) or {}).get("train_config")
    stored = stored if isinstance(stored, dict) else {}
    prepare = {k: stored.get(k) for k in ("image_size", "channels", "test_fraction")}
    dataset = load_data_for(model, split, data_source, validation=validation, limit=limit, stream=stream or None,
                            model_name=f"the model in {ckpt}", data_param="--data", **prepare)
    if len(dataset) == 0:  # refused before anything is printed: one line
        raise dn.DataError(f"{dataset.name}: the split is empty (0 images); nothing to evaluate")
    if not as_json:
        click.echo(resolve_device.note, err=True)
    result = dn.evaluate(model, dataset, batch_size=batch_size)
    if plot_path is not None:
        from dualnet import plots
        plots.save_figure(plots.evaluation_figure(result, dataset), plot_path)
    if as_json:
        click.echo(json.dumps({"accuracy": result["accuracy"], "loss": result["loss"], "n": result["n"],
                               "per_class": result["per_class"].tolist(),
                               "confusion": result["confusion"].tolist()}))
        report_written([plot_path], as_json=True)
        return
    click.echo(f"{ckpt}: {split} accuracy {result['accuracy']:.2%} on {result['n']:,} images "
               f"(loss {result['loss']:.4f})")
    names = (getattr(model, "metadata", None) or {}).get("class_names")
    if not (isinstance(names, list) and len(names) == len(result["per_class"])):
        names = [str(i) for i in range(len(result["per_class"]))]
    click.echo("per-class accuracy: " + "  ".join(f"{n}: {a:.2%}" for n, a in zip(names, result["per_class"])))
    click.echo(format_confusion(result["confusion"]))
    report_written([plot_path])


COMMANDS = [evaluate]
