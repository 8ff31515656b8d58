"""`dualnet export`: a checkpoint as an ONNX file (needs `pip install "dualnet[onnx]"`)."""

from __future__ import annotations

import json
import pathlib
import re

import click

import dualnet as dn
from dualnet.sizes import check_activations

from .common import named_output, overwrite_option, report_written

CKPT = click.Path(exists=False, dir_okay=False, path_type=pathlib.Path)
#: random inputs --verify runs through both the file and the model
VERIFY_BATCH = 8


def _shape(ctx, param, value):
    """Option callback: "C,H,W" (or CxHxW) -> a tuple of positive ints; None passes."""
    if value is None:
        return None
    text = value.strip()
    parts = re.split(r"\s*[,x]\s*", text)
    if not re.fullmatch(r"\d+(\s*[,x]\s*\d+)*", text) or not all(int(p) > 0 for p in parts):
        raise click.BadParameter(f"must be positive integers such as 1,28,28 (no batch axis), got {value!r}")
    return tuple(int(p) for p in parts)


@click.command()
@click.argument("ckpt", type=CKPT)
@click.argument("out", required=False, type=click.Path(dir_okay=False, path_type=pathlib.Path))
@click.option("-o", "--out", "out_option", type=click.Path(dir_okay=False, path_type=pathlib.Path), default=None,
              help="The ONNX file to write (the same as the positional OUT, which stays accepted).")
@click.option("--opset", type=click.IntRange(1), default=None,
              help="ONNX opset to write (default: dualnet's, 17; from 13 up to the installed onnx's newest).")
@click.option("--input-shape", callback=_shape, default=None, metavar="C,H,W",
              help="Shape of one input without the batch axis (default: the one the checkpoint records).")
@click.option("--no-fold-normalization", "no_fold", is_flag=True,
              help="Keep a recorded input normalization out of the graph (it stays in the file's metadata).")
@click.option("--verify", is_flag=True,
              help="Run the file with onnxruntime and compare with dualnet on random inputs (exits 1 if they differ).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@overwrite_option()
def export(ckpt, out, out_option, opset, input_shape, no_fold, verify, as_json, overwrite):
    """Write a checkpoint's model as an ONNX inference graph (dynamic batch axis N, float32).

    \b
    Examples:
      dualnet export runs/lenet5.h5 lenet5.onnx
      dualnet export runs/lenet5.h5 lenet5.onnx --verify --opset 18
      dualnet export runs/lenet5.h5 -o lenet5.onnx
    """
    from dualnet.export import DEFAULT_OPSET, compare_with_onnxruntime, export_onnx
    from dualnet.export.writer import input_shape_of, require

    if out is not None and out_option is not None and out != out_option:
        raise click.UsageError(f"give the ONNX file once: OUT {out} or -o {out_option}, not both")
    out = out if out is not None else out_option
    if out is None:
        raise click.UsageError("give the ONNX file to write: dualnet export CKPT OUT.onnx (or -o OUT.onnx)")
    named_output(out, [ckpt], "OUT" if out_option is None else "--out", overwrite, role="onnx")
    require("onnx")
    if verify:
        require("onnxruntime")
    model = dn.load(ckpt, device="cpu")
    if verify:  # the check runs a batch through the model: its activations are judged from shapes first
        check_activations(model, input_shape_of(model, input_shape), VERIFY_BATCH, "float32", "--input-shape")
    opset = DEFAULT_OPSET if opset is None else opset
    path = export_onnx(model, out, input_shape=input_shape, opset=opset, fold_normalization=not no_fold)
    shape = input_shape_of(model, input_shape)
    out_shape = model.output_shape(shape)
    report = {"out": str(path), "opset": opset, "input_shape": ["N", *shape], "output_shape": ["N", *out_shape],
              "parameters": sum(p.size for p in model.parameters())}
    if verify:
        report.update(compare_with_onnxruntime(model, path, batch=VERIFY_BATCH))
    if as_json:
        click.echo(json.dumps(report))
        report_written([path], as_json=True)
        return
    dims = " x ".join(map(str, report["input_shape"])) + " -> " + " x ".join(map(str, report["output_shape"]))
    click.echo(f"ONNX graph: {dims}, opset {opset}, {report['parameters']:,} parameters")
    if verify:
        click.echo(f"onnxruntime agrees with dualnet: max |diff| {report['max_abs_diff']:.2g} over "
                   f"{report['batch']} random inputs, argmax {report['argmax_agreement']:.0%}")
    report_written([path])


COMMANDS = [export]
