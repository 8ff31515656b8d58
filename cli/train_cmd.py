"""`dualnet train`: the main job."""

from __future__ import annotations

import json
import math
import pathlib
import sys
import time

import click
from click.core import ParameterSource

import dualnet as dn
from dualnet import checkpoint
from dualnet.schedules import SCHEDULES
from dualnet.train import TrainingInterrupted, TrainState, check_fits

from .common import data_option, device_option, non_negative, resolve_device
from .common import positive as _positive
from .progress import ProgressPrinter

# Defaults measured on MNIST (see README): SGD momentum 0.9 with a cosine schedule and random
# shifts of one pixel reaches >= 99.0% test accuracy in 10 epochs.
DEFAULTS = dict(model="lenet5", epochs=10, batch_size=64, lr=0.02, optimizer="nesterov", momentum=0.9,
                weight_decay=0.0, schedule="cosine", augment_shift=1, seed=0, validation=10000)

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")


def make_optimizer(name: str, params, lr: float, momentum: float, weight_decay: float):
    if name == "adam":
        return dn.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        momentum = 0.0
    return dn.optim.SGD(params, lr=lr, momentum=momentum, nesterov=name == "nesterov", weight_decay=weight_decay)


# run configuration key -> the train command's parameter that sets it
CONFIG_PARAMS = dict(model="model_name", data="data_source", epochs="epochs", batch_size="batch_size", lr="lr",
                     optimizer="optimizer_name", momentum="momentum", weight_decay="weight_decay",
                     schedule="schedule", augment_shift="augment_shift", seed="seed", limit="limit",
                     clip_grad="clip_grad", validation="validation")
# keys that checkpoints of older versions may lack, with the value those runs used
OPTIONAL_CONFIG = dict(validation=10000)
_STATE_INTS = ("seed", "epoch", "step", "global_step", "correct", "seen")
_STATE_FLOATS = ("loss_sum", "seconds")


def _stored_run(ckpt, resume: pathlib.Path, ctx: click.Context) -> tuple[dict, TrainState]:
    """The run configuration and TrainState stored by `dualnet train`, each value validated
    by the same rules as the command line's (a damaged or hand-edited file fails here)."""
    stored, rng = ckpt.metadata.get("train_config"), ckpt.rng_state
    if not isinstance(stored, dict) or not isinstance(rng, dict) or not isinstance(rng.get("train_state"), dict):
        raise click.ClickException(f"{resume} was not written by `dualnet train`; it cannot be resumed")

    def damaged(problem: str) -> click.ClickException:
        return click.ClickException(f"{resume}: cannot resume: the stored run is damaged: {problem}")

    params = {p.name: p for p in ctx.command.params}
    config = {}
    for key, name in CONFIG_PARAMS.items():
        if key not in stored and key not in OPTIONAL_CONFIG:
            raise damaged(f"train_config has no {key!r}")
        value = stored.get(key, OPTIONAL_CONFIG.get(key))
        try:
            config[key] = params[name].process_value(ctx, value)
        except click.BadParameter as exc:
            raise damaged(f"train_config {key}={value!r}: {exc.format_message()}") from None
    raw = rng["train_state"]
    for key in _STATE_INTS:
        value = raw.get(key, 0)
        if type(value) is not int or value < 0:
            raise damaged(f"train_state {key}={value!r} is not an int >= 0")
    for key in _STATE_FLOATS:
        value = raw.get(key, 0.0)
        if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
            raise damaged(f"train_state {key}={value!r} is not a finite number >= 0")
    base_lr = raw.get("base_lr")
    if base_lr is not None and (type(base_lr) not in (int, float) or not math.isfinite(base_lr) or base_lr <= 0):
        raise damaged(f"train_state base_lr={base_lr!r} is not a finite number > 0")
    history = raw.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise damaged("train_state history is not a list of epoch records")
    best = rng.get("best_acc", -1.0)
    if type(best) not in (int, float) or not math.isfinite(best):
        raise damaged(f"best_acc={best!r} is not a finite number")
    return config, TrainState.from_dict(raw)


def _conflicts(ctx: click.Context, given: dict, stored: dict) -> list[str]:
    """Options typed on the command line that differ from the resumed run's stored values."""
    out = []
    for key, name in CONFIG_PARAMS.items():
        if key == "epochs" or ctx.get_parameter_source(name) not in (ParameterSource.COMMANDLINE,
                                                                   ParameterSource.ENVIRONMENT):
            continue
        if given[key] != stored[key]:
            out.append(f"--{key.replace('_', '-')} {given[key]} (stored: {stored[key]})")
    return out


def _best_path(out: pathlib.Path) -> pathlib.Path:
    return out.with_name(out.stem + ".best" + out.suffix)


class CheckpointWriter:
    """Saves `last` after every epoch and `best` whenever validation accuracy improves."""

    def __init__(self, out: pathlib.Path, config: dict, best_acc: float = -1.0):
        self.out, self.best, self.config, self.best_acc = out, _best_path(out), config, best_acc

    def save(self, path: pathlib.Path, model, optimizer, state: TrainState) -> None:
        checkpoint.save(model, path, optimizer=optimizer, history=state.history,
                        rng_state={"train_state": state.to_dict(), "best_acc": self.best_acc},
                        train_config=self.config)

    def on_epoch(self, state, record, model, optimizer) -> None:
        acc = record.get("val_acc", record["train_acc"])
        if acc > self.best_acc:
            self.best_acc = acc
            self.save(self.best, model, optimizer, state)
        self.save(self.out, model, optimizer, state)


class JsonLines:
    def on_epoch(self, state, record, model, optimizer) -> None:
        click.echo(json.dumps({"event": "epoch", **record}))


@click.command()
@click.option("--model", "model_name", default=DEFAULTS["model"], show_default=True,
              type=click.Choice(dn.models.names()), help="Architecture to train.")
@data_option()
@device_option()
@click.option("--epochs", type=int, default=DEFAULTS["epochs"], show_default=True, callback=_positive,
              help="Epochs to train (with --resume: the total to reach).")
@click.option("--batch-size", type=int, default=DEFAULTS["batch_size"], show_default=True, callback=_positive)
@click.option("--lr", type=float, default=DEFAULTS["lr"], show_default=True, callback=_positive,
              help="Base learning rate.")
@click.option("--optimizer", "optimizer_name", type=click.Choice(OPTIMIZERS), default=DEFAULTS["optimizer"],
              show_default=True)
@click.option("--momentum", type=click.FloatRange(0.0, 1.0, max_open=True), default=DEFAULTS["momentum"],
              show_default=True, callback=non_negative, help="Momentum for --optimizer momentum/nesterov.")
@click.option("--weight-decay", type=float, default=DEFAULTS["weight_decay"], show_default=True,
              callback=non_negative)
@click.option("--schedule", type=click.Choice(SCHEDULES), default=DEFAULTS["schedule"],
              show_default=True, help="Learning-rate schedule.")
@click.option("--augment-shift", type=click.IntRange(0, 8), default=DEFAULTS["augment_shift"], show_default=True,
              help="Shift training images by up to this many pixels (0: off).")
@click.option("--seed", type=click.IntRange(0), default=DEFAULTS["seed"], show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=pathlib.Path), default=None,
              help="Checkpoint path [default: runs/<model>.h5]; the best epoch goes to <out>.best.h5.")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=pathlib.Path), default=None,
              help="Continue a run from its checkpoint, exactly where it stopped.")
@click.option("--limit", type=int, default=None, callback=_positive,
              help="Use only the first N images of each split (quick runs).")
@click.option("--validation", type=click.IntRange(0), default=DEFAULTS["validation"], show_default=True,
              help="Hold out the last N training images as the validation split.")
@click.option("--clip-grad", type=float, default=None, callback=_positive,
              help="Clip the global gradient norm to this value.")
@click.option("--plot", is_flag=True, help="Write training curves next to the checkpoint (needs matplotlib).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per epoch instead of progress.")
def train(model_name, data_source, device, epochs, batch_size, lr, optimizer_name, momentum, weight_decay,
          schedule, augment_shift, seed, out, resume, limit, validation, clip_grad, plot, as_json):
    """Train a model (LeNet-5 by default) and save checkpoints.

    \b
    Examples:
      dualnet train                                   # LeNet-5, bundled MNIST, 10 epochs
      dualnet train --device gpu --epochs 20 --optimizer adam --lr 0.001
      dualnet train --epochs 1 --limit 2000           # a quick smoke run
      dualnet train --resume runs/lenet5.h5 --epochs 15
    """
    if plot:
        from dualnet.plots import require_matplotlib
        require_matplotlib()
    # nothing is printed until the run can start: a mistake gives exactly one line
    dev = resolve_device(device, echo=False)
    config = dict(model=model_name, data=str(data_source), epochs=epochs, batch_size=batch_size, lr=lr,
                  optimizer=optimizer_name, momentum=momentum, weight_decay=weight_decay, schedule=schedule,
                  augment_shift=augment_shift, seed=seed, limit=limit, clip_grad=clip_grad, validation=validation)
    state, best_acc = None, -1.0
    if resume is not None:
        ctx = click.get_current_context()
        ckpt = checkpoint.read(resume, device=dev.name)
        stored, state = _stored_run(ckpt, resume, ctx)
        # the stored run configuration wins, so the resumed run is the same run; options typed
        # on the command line that would change it are refused rather than silently ignored
        conflicts = _conflicts(ctx, config, stored)
        if conflicts:
            raise click.UsageError(f"{resume} is resumed with its stored settings, but these options differ "
                                   f"from them: {', '.join(conflicts)}; drop them, or start a new run "
                                   "without --resume", ctx=ctx)
        config = {**stored, "epochs": epochs}
        model = ckpt.model
        optimizer = ckpt.make_optimizer()
        if optimizer is None:
            raise click.ClickException(f"{resume} holds no optimizer state; it cannot be resumed")
        best_acc = float(ckpt.rng_state.get("best_acc", -1.0))
        out = out or resume
        if state.epoch >= epochs:
            raise click.ClickException(f"{resume} has already trained {state.epoch} epochs; pass --epochs "
                                       f"larger than {state.epoch} to continue")
    else:
        model = dn.models.get(config["model"], seed=seed)
    out = out or pathlib.Path("runs") / f"{config['model']}.h5"
    checkpoint.check_writable(out)  # before any data or training time is spent
    train_set = dn.data.load(config["data"], "train", validation=config["validation"], limit=config["limit"])
    val_set = dn.data.load(config["data"], "val", validation=config["validation"], limit=config["limit"])
    test_set = _optional_test(config["data"], config["limit"])
    model_shape = tuple(model.input_shape or ())
    if model_shape and tuple(train_set.shape) != model_shape:
        raise click.ClickException(f"data {config['data']} has images {train_set.shape}, but model "
                                   f"{config['model']} expects {model_shape}")
    # everything fit would refuse is refused here, before anything is printed
    check_fits(model, train_set)
    check_fits(model, val_set)
    steps = math.ceil(len(train_set) / config["batch_size"])
    if state is not None and not 0 <= state.step < steps:
        raise click.ClickException(f"{resume}: cannot resume at step {state.step} of an epoch of {steps} steps: "
                                   "the stored state does not match its data")
    if resume is None:
        optimizer = make_optimizer(config["optimizer"], model.parameters(), config["lr"], config["momentum"],
                                   config["weight_decay"])
    if not as_json:
        click.echo(resolve_device.note, err=True)
        model.summary(file=sys.stderr)
        click.echo(f"data: {len(train_set):,} train / {len(val_set):,} val / "
                   f"{len(test_set) if test_set else 0:,} test images from {config['data']}", err=True)
    writer = CheckpointWriter(out, config, best_acc)
    callbacks = [JsonLines() if as_json else ProgressPrinter(), writer]
    started = time.perf_counter()
    try:
        dn.fit(model, train_set, val_set, epochs=config["epochs"], batch_size=config["batch_size"],
               optimizer=optimizer, schedule=config["schedule"], seed=config["seed"], callbacks=callbacks,
               augment_shift=config["augment_shift"], state=state, clip_grad_norm=config["clip_grad"],
               handle_signals=True)
    except TrainingInterrupted as exc:
        writer.save(out, model, optimizer, exc.state)
        click.echo(f"\ndualnet: {exc}; saved a resumable checkpoint to {out}\n"
                   f"resume with: dualnet train --resume {out} --epochs {config['epochs']}", err=True)
        sys.exit(130)
    minutes = (time.perf_counter() - started) / 60
    result = {"event": "done", "minutes": round(minutes, 2), "last": str(out), "best": str(writer.best)}
    if test_set is not None:
        ev = dn.evaluate(model, test_set)
        result["test_accuracy"] = ev["accuracy"]
    if plot:
        from dualnet import plots
        png = out.with_name(out.stem + ".curves.png")
        plots.save_figure(plots.training_curves([out]), png)
        result["plot"] = str(png)
    if as_json:
        click.echo(json.dumps(result))
        return
    if "test_accuracy" in result:
        click.echo(f"test accuracy: {result['test_accuracy']:.2%} ({len(test_set):,} images)")
    click.echo(f"checkpoints: last {out}, best {writer.best} (val acc {writer.best_acc:.2%})")
    if plot:
        click.echo(f"curves: {result['plot']}")
    took = f"{minutes * 60:.0f} s" if minutes < 2 else f"{minutes:.1f} min"
    click.echo(f"trained in {took} on {dev.name}")


def _optional_test(source: str, limit):
    """The test split, or None for data that has none (an HDF5 file with one images set)."""
    try:
        return dn.data.load(source, "test", limit=limit)
    except dn.data.MissingTestSplit:
        return None


COMMANDS = [train]
