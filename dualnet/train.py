"""The training loop: `dn.fit` and `dn.evaluate`.

The dataset moves to the model's device once per fit and batches are sliced there; loss and
accuracy accumulate on the device, so a GPU step does not wait for the host. Every random choice
(batch order, augmentation shifts) is a pure function of (seed, epoch, step): the same seed gives
the same result bit for bit on the CPU, and a run stopped at any step resumes exactly.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from . import data as _data
from .backend import to_device, to_numpy
from .distributed.parallel import DataParallel
from .errors import DataError
from .layers import Sequential
from .losses import SoftmaxCrossEntropy
from .schedules import SCHEDULES, Schedule
from .train_checks import _clip, _first_nonfinite_layer, _grads_finite, _parameter_dtype
from .train_state import DeviceOutOfMemory, TrainingDiverged, TrainingInterrupted, TrainState
from .train_tally import make_tally

__all__ = ["fit", "evaluate", "check_fits", "TrainState", "TrainingDiverged", "TrainingInterrupted",
           "DeviceOutOfMemory", "OOM_ERRORS"]

#: Exception types that mean "the device ran out of memory", besides CuPy's OutOfMemoryError
#: (recognised without importing CuPy: only a loaded CuPy can raise it). Tests register stand-ins.
OOM_ERRORS: tuple[type[BaseException], ...] = ()


def _oom_errors() -> tuple[type[BaseException], ...]:
    cupy = sys.modules.get("cupy")
    oom = getattr(getattr(getattr(cupy, "cuda", None), "memory", None), "OutOfMemoryError", None)
    return OOM_ERRORS + ((oom,) if isinstance(oom, type) else ())


def _check_positive_int(value: Any, what: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"fit: {what} must be a positive integer, got {value!r}")
    return int(value)


def check_fits(model: Any, dataset: Any, model_name: str = "the model") -> None:
    """Raise DataError unless `model` accepts `dataset`'s images, of the shape it was built for
    (`model.input_shape`, where set), and outputs a score for every label.

    Checked from shapes alone, before any computation, so that a mismatch is explained instead
    of failing deep inside a layer (or reading past the logits with an out-of-range label).
    """
    if not hasattr(model, "layers") or len(dataset) == 0:
        return
    shape = tuple(dataset.images.shape[1:])
    try:
        out = model.output_shape(shape)
    except ValueError as exc:
        raise DataError(f"{dataset.name}: images of shape {shape} do not fit {model_name}: {exc}") from None
    # layers such as global pooling take any size, but a model sees only the size it was built for
    built = tuple(getattr(model, "input_shape", None) or ())
    if len(built) == len(shape) and built != shape:
        raise DataError(f"{dataset.name}: images of shape {shape} differ from the {built} {model_name} was built "
                        "for (and trained on); give data of that shape")
    if int(dataset.labels.min()) < 0:
        raise DataError(f"{dataset.name}: label {int(dataset.labels.min())} is negative; labels are classes 0..K-1")
    classes = max(int(getattr(dataset, "num_classes", 0) or 0), int(dataset.labels.max()) + 1)
    if len(out) != 1 or classes > out[0]:
        raise DataError(f"{dataset.name}: the data has {classes} classes (labels 0..{classes - 1}), but "
                        f"{model_name} outputs {'x'.join(map(str, out))} scores per image (one per class needed)")


def fit(model: Any, train: Any, val: Any = None, epochs: int = 10, batch_size: int = 64,
        optimizer: Any = None, schedule: str = "none", seed: int = 0,
        callbacks: Iterable[Any] = (), augment_shift: int = 0, state: TrainState | None = None,
        progress_every: int = 20, clip_grad_norm: float | None = None,
        handle_signals: bool = False, verbose: bool = False, augment_crop: int = 0,
        augment_flip: bool = False, comm: Any = None) -> list[dict]:
    """Train `model` on `train` (a dualnet.data.Dataset) and return the history.

    Each history entry (one per epoch): epoch, train_loss, train_acc, val_loss, val_acc, lr,
    seconds, images_per_s. `callbacks` are objects with optional methods
    `on_batch(state, info)` (every `progress_every` steps: info has loss, acc, images_per_s,
    step, steps), `on_epoch(state, record, model, optimizer)` (after each epoch, in order) and
    `on_train_end(state, model, optimizer)` (once, when fit returns normally). A callback stops
    training by calling `state.request_stop(reason)` in `on_epoch`: the epoch's remaining
    callbacks still run (so checkpoints are saved), then fit returns, leaving the reason in
    `state.stop_reason` (see dualnet.callbacks: EarlyStopping, CSVLogger, TensorBoard). Pass
    `state` (from a checkpoint) to resume exactly where a run stopped; a stopped state trains no
    further. `verbose=True` prints progress to stderr as `dualnet train` does. The learning rate
    follows `schedule` over `epochs`, or the segments in `state.schedule_segments`
    (dualnet.schedules). `comm` (dualnet.distributed.communicator()) trains data-parallel: each
    rank takes `batch[rank::size]` of every global batch of `batch_size` (see dualnet.distributed).
    (dualnet.schedules). `augment_shift`, `augment_crop` (padding) and `augment_flip` augment each
    training batch (dn.data.augment_batch: pure functions of (seed, epoch, step)). A model with an
    input normalization (`model.normalization`, see dn.data.normalize) gets every batch normalized,
    after any augmentation.

    Guards: data the model cannot take raises DataError before any step (`check_fits`); a loss
    or gradient that turns NaN/inf raises TrainingDiverged naming the step and the layer (checked
    every step on the CPU, every `progress_every` steps on a GPU, and on the parameters at each
    epoch's end, before the callbacks save anything); running out of GPU memory raises
    DeviceOutOfMemory suggesting half the batch size.
    """
    from .optim import SGD

    epochs = _check_positive_int(epochs, "epochs")
    batch_size = _check_positive_int(batch_size, "batch_size")
    if schedule not in SCHEDULES:
        raise ValueError(f"fit: unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if augment_shift < 0 or augment_crop < 0:
        raise ValueError(f"fit: augment_shift and augment_crop must be >= 0, got {augment_shift} and {augment_crop}")
    augmenting = bool(augment_shift or augment_crop or augment_flip)
    streamed = not isinstance(train.images, np.ndarray)  # a StreamDataset: batches are read from its file
    if len(train) == 0:
        raise ValueError("fit: the training set is empty")
    check_fits(model, train)
    if val is not None:
        check_fits(model, val)
    optimizer = optimizer or SGD(model.parameters(), lr=0.01, momentum=0.9)
    state = state or TrainState(seed=seed)
    dp = None if comm is None else DataParallel(comm, model, optimizer, state, batch_size, len(train))
    state = state if dp is None else dp.state
    if state.base_lr is None:
        state.base_lr = optimizer.lr
    base_lr = state.base_lr
    callbacks = list(callbacks)
    if verbose and (dp is None or dp.rank == 0):  # one job, one progress printer
        from .callbacks import ProgressPrinter
        callbacks.append(ProgressPrinter())
    dev = model.device
    xp = dev.xp
    crit = SoftmaxCrossEntropy(device=dev)
    n = len(train)
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = steps_per_epoch * epochs
    plan = Schedule.of_run(schedule, base_lr, steps_per_epoch, epochs, state.schedule_segments)
    if state.schedule_segments and plan.end_step != total_steps:
        raise ValueError(f"fit: the state's schedule segments end at step {plan.end_step}, but {epochs} epochs "
                         f"of {steps_per_epoch} steps end at {total_steps}: extend the schedule to the new "
                         "length (dualnet.schedules.extend) or clear state.schedule_segments")
    # step == steps_per_epoch is a state older versions saved when a signal landed on an epoch's last
    # step: the epoch's steps are all done, only its end (record, validation, callbacks) remains
    if not 0 <= state.step <= steps_per_epoch or (state.step and not state.seen):
        raise ValueError(f"fit: cannot resume at step {state.step} of an epoch of {steps_per_epoch} "
                         f"steps ({state.seen} images seen): the state belongs to another run")
    # one transfer per fit; augmentation works on the host copy batch by batch; the model's input
    # normalization (model.normalization, dn.data.normalize) applies to every batch, after augmenting
    dtype = _parameter_dtype(model)  # the data follows the model (a float64 or float16 checkpoint)
    norm = _data.model_normalization(model)
    images_dev = None if augmenting or streamed else to_device(
        _data.normalize(train.images, norm).astype(dtype, copy=False), dev)
    labels_dev = to_device(train.labels.astype(np.int32), dev)

    stop_signal: dict[str, Any] = {"signum": None}
    old_handlers: dict[int, Any] = {}
    if handle_signals and threading.current_thread() is threading.main_thread():
        def _ask_stop(signum: int, frame: Any) -> None:
            stop_signal["raised" if dp else "signum"] = signum  # dp: decided together, below
        for sig in (signal.SIGINT, signal.SIGTERM):
            old_handlers[sig] = signal.signal(sig, _ask_stop)
    # divergence is detected and explained below; NumPy's overflow warnings would only be noise
    errstate = np.errstate(over="ignore", invalid="ignore", divide="ignore")
    errstate.__enter__()
    scope = dev.scope()  # on "gpu:N" every array of the loop is allocated on N
    scope.__enter__()
    reader = None
    try:
        while state.epoch < epochs and not state.stop_reason:
            epoch = state.epoch
            order = _data.epoch_order(n, state.seed, epoch)
            order_dev = to_device(order.astype(np.int32), dev)  # one upload per epoch
            if streamed:  # the epoch's batches in its order, read a step or two ahead
                reader = _data.prefetched(lambda s, o=order: train.images[o[s * batch_size:(s + 1) * batch_size]],
                                          range(state.step, steps_per_epoch))
            model.train()
            tally = make_tally(dev, model, optimizer, progress_every, state.loss_sum, state.correct) if dp is None \
                else dp.tally(make_tally, dev, progress_every, state)
            t0 = time.perf_counter() - state.seconds
            last_report = (time.perf_counter(), state.seen)
            for step in range(state.step, steps_per_epoch):
                start, stop = step * batch_size, min((step + 1) * batch_size, n)
                b = stop - start
                if augmenting or streamed:
                    raw = next(reader) if reader is not None else train.images[order[start:stop]]
                    xb_host = _data.augment_batch(raw, state.seed, epoch, step, augment_shift, augment_crop,
                                                  augment_flip)
                    xb_host = _data.normalize(xb_host, norm).astype(dtype, copy=False)
                else:
                    xb_host = None
                if dp is not None:
                    xb, yb = dp.batch(xb_host, images_dev, labels_dev, order, epoch, step, dev)
                elif xb_host is not None:
                    xb = to_device(xb_host, dev)
                    yb = labels_dev[order_dev[start:stop]]
                else:
                    xb, yb = dev.ops.gather_batch(images_dev, labels_dev, order_dev, start, stop)
                lr = plan.rate(state.global_step)
                optimizer.lr = lr
                model.zero_grad()
                logits = model(xb)
                loss = crit.forward(logits, yb, sync=False)
                dlogits = crit.backward(1.0 if dp is None else dp.weight)
                if isinstance(model, Sequential):
                    model.backward(dlogits, need_input_grad=False)
                else:
                    model.backward(dlogits)
                if dp is not None:
                    dp.sync_step()
                if clip_grad_norm:
                    _clip(model, clip_grad_norm)
                # on the CPU the loss is already on the host: check every step; on a GPU the
                # step's tally flags non-finite gradients on the device, read where the loop reports
                check_now = not tally.deferred and (dev.kind != "gpu" or (step + 1) % progress_every == 0)
                if check_now and not (math.isfinite(float(loss)) and _grads_finite(model)):
                    where = _first_nonfinite_layer(model, xb, yb)
                    raise TrainingDiverged(f"training diverged at epoch {epoch + 1}, step {step + 1} "
                                           f"(global step {state.global_step + 1}): the loss is {float(loss)}; "
                                           f"non-finite values first appear in {where}. Try a lower --lr "
                                           f"or --clip-grad")
                tally.add(loss, logits, yb, int(yb.shape[0]), state.global_step + 1)
                optimizer.step()
                state.step = step + 1
                state.global_step += 1
                state.seen += b
                if (step + 1) % progress_every == 0 or step + 1 == steps_per_epoch:
                    last_report = _report_progress(tally, state, callbacks, last_report, epoch, epochs,
                                                   steps_per_epoch, lr)
                if dp is not None:
                    stop_signal["signum"] = dp.decide_stop(stop_signal.get("raised"))
                # on an epoch's last step the epoch is finished first (below), so that the state
                # saved is an epoch boundary
                if stop_signal["signum"] is not None and step + 1 < steps_per_epoch:
                    state.loss_sum, state.correct = tally.totals()
                    _check_tally(tally, state, epoch)
                    state.seconds = time.perf_counter() - t0
                    name = signal.Signals(stop_signal["signum"]).name
                    raise TrainingInterrupted(f"{name} received at epoch {epoch + 1}, step {step + 1}",
                                              state, stop_signal["signum"])
            seconds = time.perf_counter() - t0
            loss_sum, correct = tally.totals()
            _check_tally(tally, state, epoch)
            record = dict(epoch=epoch + 1, train_loss=loss_sum / state.seen,
                          train_acc=correct / state.seen, lr=optimizer.lr, seconds=seconds,
                          images_per_s=state.seen / max(seconds, 1e-9))
            if not math.isfinite(record["train_loss"]):
                raise TrainingDiverged(f"training diverged in epoch {epoch + 1}: the mean loss is "
                                       f"{record['train_loss']}; try a lower --lr or --clip-grad")
            # the last update of the epoch has not been seen by a loss yet: nothing non-finite
            # may reach the callbacks (they save checkpoints)
            if not (tally.deferred and tally.parameters_finite()):
                for name, p in model.named_parameters():
                    if not bool(xp.isfinite(p.data).all()):
                        raise TrainingDiverged(f"training diverged by the end of epoch {epoch + 1} (step "
                                               f"{steps_per_epoch}, global step {state.global_step}): parameter "
                                               f"{name} became non-finite. Try a lower --lr or --clip-grad")
            if val is not None and len(val):
                ev = evaluate(model, val) if dp is None else dp.evaluate(evaluate, model, val)
                record.update(val_loss=ev["loss"], val_acc=ev["accuracy"])
            state.history.append(record)
            state.epoch, state.step, state.loss_sum, state.correct, state.seen, state.seconds = \
                epoch + 1, 0, 0.0, 0, 0, 0.0
            for cb in callbacks:
                if hasattr(cb, "on_epoch"):
                    cb.on_epoch(state, record, model, optimizer)
            if dp is not None:
                state.stop_reason = dp.agree_reason(state.stop_reason)
            if stop_signal["signum"] is not None and state.epoch < epochs:
                name = signal.Signals(stop_signal["signum"]).name
                raise TrainingInterrupted(f"{name} received at the end of epoch {epoch + 1}", state,
                                          stop_signal["signum"])
        for cb in callbacks:
            if hasattr(cb, "on_train_end"):
                cb.on_train_end(state, model, optimizer)
    except _oom_errors():
        raise DeviceOutOfMemory(batch_size, "training") from None
    finally:
        if reader is not None:
            reader.close()  # stops the prefetch thread of an epoch left early
        scope.__exit__(None, None, None)
        errstate.__exit__(None, None, None)
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
    return state.history


def _report_progress(tally: Any, state: TrainState, callbacks: list, last_report: tuple[float, int], epoch: int,
                     epochs: int, steps: int, lr: float) -> tuple[float, int]:
    """A progress point: read the tally (the loop's one host sync here) and call on_batch."""
    now = time.perf_counter()
    rate = (state.seen - last_report[1]) / max(now - last_report[0], 1e-9)
    if tally.deferred or callbacks:
        loss_sum, correct = tally.totals()
        _check_tally(tally, state, epoch)
        info = dict(epoch=epoch + 1, epochs=epochs, step=state.step, steps=steps, loss=loss_sum / state.seen,
                    acc=correct / state.seen, images_per_s=rate, lr=lr)
        for cb in callbacks:
            if hasattr(cb, "on_batch"):
                cb.on_batch(state, info)
    return now, state.seen


def _check_tally(tally: Any, state: TrainState, epoch: int) -> None:
    """Raise TrainingDiverged if the device tally saw a non-finite gradient."""
    bad = tally.divergence()
    if bad is not None:
        first, where = bad
        raise TrainingDiverged(f"training diverged at epoch {epoch + 1}, step {state.step} (global step "
                               f"{state.global_step}): non-finite values first appear in the gradient of {where} "
                               f"at global step {first}. Try a lower --lr or --clip-grad")


#: evaluate's default batch: on "cpu" an eval-mode forward runs in cache-sized chunks whatever the
#: batch (ops/cpu.py, inference_in_chunks), so a large batch only saves per-batch work (the loss,
#: the copies); measured fastest of 64-5000 within noise (benchmarks/RESULTS.md)
EVAL_BATCH_SIZE = 1000


def evaluate(model: Any, dataset: Any, batch_size: int = EVAL_BATCH_SIZE) -> dict:
    """Accuracy, mean loss, per-class accuracy and the confusion matrix (rows: true class).

    Inputs are normalized with the model's normalization when it has one (dn.data.model_normalization).

    Returns {"accuracy", "loss", "n", "per_class" (K,), "confusion" (K, K) int64,
    "predictions" (N,) int64, "probabilities" (N, K) float32}. Raises DataError for data the model
    cannot take and DeviceOutOfMemory (suggesting half the batch size) when the GPU runs out.
    """
    batch_size = _check_positive_int(batch_size, "batch_size")
    check_fits(model, dataset)
    was_training = model.training
    model.eval()
    dev = model.device
    crit = SoftmaxCrossEntropy(device=dev)
    dtype = _parameter_dtype(model)
    if len(dataset) == 0:
        raise DataError(f"{getattr(dataset, 'name', 'the data')}: the split is empty (0 images); nothing to evaluate")
    k = int(getattr(dataset, "num_classes", 0) or int(dataset.labels.max()) + 1)
    norm = _data.model_normalization(model)  # the inputs as the model was trained on them
    preds, probs, loss_sum = [], [], 0.0
    scope = dev.scope()  # on "gpu:N" every array of the loop is allocated on N
    scope.__enter__()
    try:
        for start in range(0, len(dataset), batch_size):
            xb = to_device(_data.normalize(dataset.images[start:start + batch_size], norm).astype(dtype, copy=False),
                           dev)
            yb = to_device(dataset.labels[start:start + batch_size].astype(np.int32), dev)
            logits = model(xb)
            loss_sum += float(crit.forward(logits, yb, sync=False)) * len(yb)
            probs.append(to_numpy(crit.probs).astype(np.float32))
            preds.append(to_numpy(logits.argmax(axis=1)).astype(np.int64))
    except _oom_errors():
        raise DeviceOutOfMemory(batch_size, "evaluation") from None
    finally:
        scope.__exit__(None, None, None)
        model.train(was_training)
    pred = np.concatenate(preds) if preds else np.zeros(0, np.int64)
    true = dataset.labels.astype(np.int64)
    kk = max(k, int(pred.max(initial=-1)) + 1)
    confusion = np.bincount(true * kk + pred, minlength=kk * kk).reshape(kk, kk)
    per_class = np.diag(confusion) / np.maximum(confusion.sum(axis=1), 1)
    n = len(true)
    return dict(accuracy=float((pred == true).mean()) if n else float("nan"), loss=loss_sum / max(n, 1), n=n,
                per_class=per_class, confusion=confusion, predictions=pred,
                probabilities=np.concatenate(probs) if probs else np.zeros((0, kk), np.float32))
