"""`dualnet train`: the main job."""

from __future__ import annotations

import json
import pathlib
import sys

import click
from click.core import ParameterSource

import dualnet as dn
from dualnet import run
from dualnet.callbacks import ProgressPrinter
from dualnet.optim import OPTIMIZERS
from dualnet.run import RunConfig
from dualnet.schedules import SCHEDULES
from dualnet.train import TrainingInterrupted

from .common import (
    check_folder_options,
    data_option,
    declare_inputs,
    device_option,
    folder_options,
    free_default,
    named_output,
    non_negative,
    overwrite_option,
    preparation_line,
    refuse_existing,
    refuse_replacing_inputs,
    report_written,
    resolve_device,
)
from .common import positive as _positive
from .train_callbacks import build_callbacks, callback_options, summary, summary_lines
from .train_distributed import communicator, distributed_options, guard, rank_device, resume_command, together
from .train_finetune import apply_finetune, finetune_options, refuse_with_resume

# the option defaults are the library's (RunConfig documents why they are what they are); those left
# at None follow the data's recipe (dualnet.recipes), printed when the run starts
DEFAULTS = RunConfig()
BY_DATA = "by data"

# run configuration field -> the train command's parameter that sets it
CONFIG_PARAMS = dict(model="model_name", data="data_source", epochs="epochs", batch_size="batch_size", lr="lr",
                     optimizer="optimizer_name", momentum="momentum", weight_decay="weight_decay",
                     schedule="schedule", augment_shift="augment_shift", seed="seed", limit="limit",
                     clip_grad="clip_grad", validation="validation", num_classes="num_classes",
                     augment_crop="augment_crop", augment_flip="augment_flip", normalize="normalize", stream="stream",
                     image_size="image_size", channels="channels", test_fraction="test_fraction", strict="strict")


def _typed(ctx: click.Context, given: dict) -> dict:
    """The settings typed on the command line (or set in the environment), not left at their defaults."""
    return {key: given[key] for key, name in CONFIG_PARAMS.items()
            if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}


class JsonLines:
    """Prints one JSON object per epoch."""

    def on_epoch(self, state, record, model, optimizer) -> None:
        click.echo(json.dumps({"event": "epoch", **record}))


@click.command()
@click.option("--model", "model_name", default=None, show_default=BY_DATA,
              type=click.Choice(dn.models.names()),
              help="Architecture to train (default: lenet5 for 1x28x28, digits-cnn for 8x8, resnet8 for colour).")
@data_option()
@device_option()
@click.option("--epochs", type=int, default=None, show_default=BY_DATA, callback=_positive,
              help="Epochs to train (with --resume: the total to reach; default: the stored total).")
@click.option("--batch-size", type=int, default=None, show_default=BY_DATA, callback=_positive,
              help="Images per training step (with --distributed: the global batch over all ranks).")
@click.option("--lr", type=float, default=None, show_default=BY_DATA, callback=_positive,
              help="Base learning rate.")
@click.option("--optimizer", "optimizer_name", type=click.Choice(tuple(OPTIMIZERS)), default=None,
              show_default="by data: nesterov; momentum for cifar10",
              help="The update rule (momentum, nesterov: SGD with momentum; adamw: Adam with decoupled weight decay).")
@click.option("--momentum", type=click.FloatRange(0.0, 1.0, max_open=True), default=DEFAULTS.momentum,
              show_default=True, callback=non_negative, help="Momentum for --optimizer momentum/nesterov.")
@click.option("--weight-decay", type=float, default=None, show_default=BY_DATA, callback=non_negative,
              help="L2 penalty added to every weight's gradient (0: off).")
@click.option("--schedule", type=click.Choice(SCHEDULES), default=None,
              show_default="by data: cosine; step for cifar10", help="Learning-rate schedule.")
@click.option("--augment-shift", type=click.IntRange(0, run.MAX_AUGMENT_SHIFT), default=None,
              show_default=BY_DATA, help="Shift training images by up to this many pixels (0: off).")
@click.option("--augment-crop", type=click.IntRange(0, run.MAX_AUGMENT_SHIFT), default=None, show_default=BY_DATA,
              metavar="P", help="Alias of --augment-shift as vision recipes name it: random crops of images "
              "padded by P zeros (the same shift, its own random stream; 0: off).")
@click.option("--augment-flip/--no-augment-flip", default=None, show_default=BY_DATA,
              help="Mirror half of the training images left-right.")
@click.option("--normalize/--no-normalize", default=None, show_default=BY_DATA,
              help="Normalize inputs per channel with the training split's mean and std (stored in the checkpoint).")
@click.option("--seed", type=click.IntRange(0), default=DEFAULTS.seed, show_default=True,
              help="Seed of the initial weights, the batch order and the augmentation (a rerun is bit for bit).")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=pathlib.Path), default=None,
              help="Checkpoint path [default: runs/<model>.h5]; the best epoch goes to <out>.best.h5.")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=pathlib.Path), default=None,
              help="Continue a run from its checkpoint, exactly where it stopped.")
@click.option("--limit", type=int, default=None, callback=_positive,
              help="Use only the first N images of each split (quick runs).")
@click.option("--validation", type=click.IntRange(0), default=None, show_default="a sixth, at most 10000",
              help="Hold out the last N training images as the validation split.")
@click.option("--num-classes", type=click.IntRange(1, dn.data.MAX_CLASSES), default=None,
              show_default="from the labels", help="Classes the model scores (labels outside 0..N-1 are refused).")
@click.option("--stream", is_flag=True,
              help="Read an HDF5 file's images batch by batch instead of loading them (data larger than memory).")
@folder_options
@click.option("--clip-grad", type=float, default=None, callback=_positive,
              help="Clip the global gradient norm to this value.")
@click.option("--plot", is_flag=True, help="Write training curves next to the checkpoint (needs matplotlib).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per epoch instead of progress.")
@overwrite_option()
@callback_options
@distributed_options
@finetune_options
def train(model_name, data_source, device, epochs, batch_size, lr, optimizer_name, momentum, weight_decay,
          schedule, augment_shift, augment_crop, augment_flip, normalize, seed, out, resume, limit, validation,
          num_classes, stream, image_size, channels, test_fraction, strict, clip_grad, plot, as_json, overwrite,
          early_stop, log_csv, tensorboard, extend_schedule, distributed, reduction, init_from, freeze):
    """Train a model (chosen by the data's shape unless --model) and save checkpoints.

    \b
    Examples:
      dualnet train                                   # LeNet-5, bundled MNIST, 10 epochs
      dualnet train --data digits                     # digits-cnn on the 8x8 digits
      dualnet train --data colour.h5                  # resnet8 for (N, 3, 32, 32) images
      dualnet train --data photos/ --image-size 64,64 # a folder of photos, one subfolder per class
      dualnet train --device gpu --epochs 20 --optimizer adam --lr 0.001
      dualnet train --epochs 1 --limit 2000           # a quick smoke run
      dualnet train --resume runs/lenet5.h5 --epochs 15
      dualnet train --init-from runs/lenet5.h5 --freeze 'conv*' --epochs 3
      dualnet train --epochs 50 --early-stop 5 --log-csv runs/log.csv
      mpiexec -n 2 dualnet train --distributed --device cpu
    """
    if plot:
        from dualnet.plots import require_matplotlib
        require_matplotlib()
    # nothing is printed until the run can start: a mistake gives exactly one line
    refuse_with_resume(init_from, freeze, resume is not None)
    if resume is not None:  # what is wrong with the checkpoint read comes before what would be written
        dn.checkpoint.reader.check_readable(resume)
    declare_inputs([data_source], resumed=resume)
    # a resumed run appends to its CSV log; TensorBoard adds an event file of its own to an existing folder
    named_output(log_csv, [], "--log-csv", overwrite or resume is not None, role="csv-log")
    refuse_replacing_inputs(tensorboard, [], "--tensorboard", role="tensorboard", folder=True)
    if model_name is not None or out is not None or resume is not None:
        chosen = _check_outputs(out, resume, model_name, data_source, overwrite, early_stop)
        if out is None and resume is None:
            out = chosen  # the default path, or the first free one beside it
    dev = resolve_device(rank_device(distributed, device), echo=False)
    comm = communicator(distributed, reduction, dev)
    given = dict(model=model_name, data=str(data_source), epochs=epochs, batch_size=batch_size, lr=lr,
                 optimizer=optimizer_name, momentum=momentum, weight_decay=weight_decay, schedule=schedule,
                 augment_shift=augment_shift, seed=seed, limit=limit, clip_grad=clip_grad, validation=validation,
                 num_classes=num_classes, augment_crop=augment_crop, augment_flip=augment_flip, normalize=normalize,
                 stream=stream, image_size=image_size, channels=channels, test_fraction=test_fraction, strict=strict)
    check_folder_options(click.get_current_context(), data_source)
    # under --distributed one rank's refusal (a missing file, a bad option) is every rank's, naming it:
    # the others must not be left waiting in a collective
    with together(comm):
        if resume is not None:
            ctx = click.get_current_context()
            stored = run.read_run(resume, device=dev.name)
            # the stored run configuration wins, so the resumed run is the same run; options typed
            # on the command line that would change it are refused rather than silently ignored
            differ = run.conflicts(_typed(ctx, given), stored.config)
            if differ:
                listed = ", ".join(f"--{key.replace('_', '-')} {value} (stored: {kept})" for key, value, kept in differ)
                raise click.UsageError(f"{resume} is resumed with its stored settings, but these options differ "
                                       f"from them: {listed}; drop them, or start a new run without --resume", ctx=ctx)
            # --epochs left at its default means the stored target, not 10 (which would change the plan)
            target = epochs if "epochs" in _typed(ctx, given) else None
            prepared = run.resumed_run(stored, target, out, extend_schedule or "anneal")
        else:
            if extend_schedule is not None:
                raise click.UsageError("--extend-schedule applies to --resume only", ctx=click.get_current_context())
            prepared = run.new_run(RunConfig(**given), out, free_default=not overwrite)
            if model_name is None and out is None:  # the default path follows the model the data chose
                _check_outputs(out, resume, prepared.config.model, data_source, overwrite, early_stop)
    config, out = prepared.config, prepared.out
    tuned = apply_finetune(prepared.model, init_from, freeze)
    if extend_schedule is not None and prepared.schedule_note is None:
        raise click.UsageError(f"--extend-schedule has nothing to extend: {resume} goes on to its planned "
                               f"{config.epochs} epochs; pass a larger --epochs", ctx=click.get_current_context())
    extra = build_callbacks(early_stop, log_csv, tensorboard, resume is not None, len(prepared.val_set) > 0)
    if not as_json:
        click.echo(resolve_device.note, err=True)
        prepared.model.summary(file=sys.stderr)
        test_set = prepared.test_set
        click.echo(prepared.recipe_note, err=True)
        for line in tuned:
            click.echo(line, err=True)
        if "image_preparation" in prepared.writer.metadata:
            click.echo(preparation_line(config.data, prepared.writer.metadata["image_preparation"]), err=True)
        click.echo(f"data: {len(prepared.train_set):,} train / {len(prepared.val_set):,} val / "
                   f"{len(test_set) if test_set else 0:,} test images from {config.data}", err=True)
        if prepared.schedule_note:
            click.echo(prepared.schedule_note, err=True)
    elif prepared.schedule_note:
        click.echo(json.dumps({"event": "schedule", "note": prepared.schedule_note}))
    try:
        with guard(comm):
            done = prepared.execute([*extra, JsonLines() if as_json else ProgressPrinter()], handle_signals=True,
                                    comm=comm)
    except TrainingInterrupted as exc:
        click.echo(f"\ndualnet: {exc}; saved a resumable checkpoint to {out}\n"
                   f"resume with: {resume_command(comm)} --resume {out} --epochs {config.epochs}", err=True)
        if comm is None or not comm.rank:
            report_written([out], as_json=as_json)  # the closing line of every command that writes
        sys.exit(130)
    if comm is not None and comm.rank:
        return  # rank 0 reports and draws for the job
    minutes = done.seconds / 60
    result = {"event": "done", "minutes": round(minutes, 2), "last": str(out), "best": str(done.best),
              "recipe": prepared.recipe_note, **summary(extra)}
    if done.test_accuracy is not None:
        result["test_accuracy"] = done.test_accuracy
    if plot:
        from dualnet import plots
        png = free_default(out.with_name(out.stem + ".curves.png"), overwrite)
        plots.save_figure(plots.training_curves([out]), png)
        result["plot"] = str(png)
    wrote = [out, done.best, *written_by(extra), result.get("plot")]
    if as_json:
        click.echo(json.dumps(result))
        report_written(wrote, as_json=True)
        return
    if "test_accuracy" in result:
        click.echo(f"test accuracy: {result['test_accuracy']:.2%} ({len(prepared.test_set):,} images)")
    click.echo(f"checkpoints: last {out}, best {done.best} (val acc {done.best_acc:.2%})")
    for line in summary_lines(result):
        click.echo(line)
    took = f"{minutes * 60:.0f} s" if minutes < 2 else f"{minutes:.1f} min"
    click.echo(f"trained in {took} on {dev.name}")
    report_written(wrote)


def _check_outputs(out, resume, model_name: str, data_source, overwrite: bool, early_stop) -> pathlib.Path:
    """The checkpoint path to write: --out, else the --resume checkpoint (a resumed run goes on
    writing its own), else runs/<model>.h5 or, when that (or its .best/.earlystop file) exists and
    --overwrite is not given, the first free runs/<model>-N.h5. Refused before anything is loaded:
    a path that would replace the data or another output, and an --out the user named whose files
    exist, unless --overwrite (the files of the run --resume continues are its own)."""
    target = pathlib.Path(out) if out is not None else (resume or pathlib.Path("runs") / f"{model_name}.h5")
    if out is None and resume is None and not overwrite:
        target = run.free_run_path(target)
    copy = target.with_name(target.stem + ".earlystop" + target.suffix)
    refuse_replacing_inputs(target, [], "--out", role="checkpoint")
    refuse_replacing_inputs(run.best_path(target), [], "--out", role="best-checkpoint")
    if early_stop is not None:
        refuse_replacing_inputs(copy, [], "--early-stop", role="early-stop-copy")
    own = resume is not None and (out is None or _same_file(out, resume))
    if out is not None and not own:
        refuse_existing(target, "--out", overwrite)
        refuse_existing(run.best_path(target), "--out", overwrite, named=target, what="best checkpoint")
        if early_stop is not None:
            refuse_existing(copy, "--out", overwrite, named=target, what="early-stop copy")
    return target


def _same_file(a: pathlib.Path, b: pathlib.Path) -> bool:
    try:
        return pathlib.Path(a).samefile(b)
    except OSError:
        return False


def written_by(callbacks: list) -> list[pathlib.Path]:
    """The files the callbacks wrote: the early-stop copy, the CSV log, the TensorBoard event file."""
    found = []
    for cb in callbacks:
        for attr in ("best_copy", "path", "written"):
            path = getattr(cb, attr, None)
            if isinstance(path, pathlib.Path) and path.is_file():
                found.append(path)
    return found


COMMANDS = [train]
