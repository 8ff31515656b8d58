"""Training curves: loss and accuracy per epoch of one or more runs."""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DualnetError
from .figure import _figure


def _is_history(obj: Any) -> bool:
    return isinstance(obj, (list, tuple)) and len(obj) > 0 and all(isinstance(e, dict) for e in obj)


def _runs(checkpoints: Any, labels: Sequence[str] | None) -> list[tuple[str, list[dict]]]:
    from .. import checkpoint

    if isinstance(checkpoints, (str, os.PathLike)) or hasattr(checkpoints, "history") or _is_history(checkpoints):
        checkpoints = [checkpoints]
    checkpoints = list(checkpoints)
    if not checkpoints:
        raise DualnetError("training_curves: no checkpoints given")
    if labels is not None and len(labels) != len(checkpoints):
        raise DualnetError(f"training_curves: {len(labels)} labels for {len(checkpoints)} checkpoints")
    runs = []
    for i, item in enumerate(checkpoints):
        if isinstance(item, (str, os.PathLike)):
            item = checkpoint.read(item, device="cpu")
        if _is_history(item) or (isinstance(item, (list, tuple)) and not item):
            history, name, where = list(item), f"run {i + 1}", f"history {i + 1}"
        elif hasattr(item, "history") and hasattr(item, "path"):
            history, where = list(item.history), str(item.path)
            stem = pathlib.Path(item.path).stem
            model = (getattr(item.model, "spec", None) or {}).get("name") or \
                (item.metadata.get("train_config") or {}).get("model")
            name = stem if not model or model == stem else f"{stem} ({model})"
        else:
            raise DualnetError(f"training_curves: item {i + 1} is a {type(item).__name__}; expected a "
                               "checkpoint path, a Checkpoint or a history list of per-epoch dicts")
        if not history:
            raise DualnetError(f"{where} holds no training history (save it with history=...; "
                               "`dualnet train` does)")
        runs.append((labels[i] if labels is not None else name, history))
    return runs


def _column(history: list[dict], key: str) -> np.ndarray:
    return np.array([np.nan if e.get(key) is None else float(e[key]) for e in history], dtype=np.float64)


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Round tick values for a log axis over [lo, hi]: 1-2-5 steps, finer when that gives < 3."""
    for mantissas in ((1, 2, 5), (1, 2, 3, 5, 7), range(1, 10)):
        ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
                 for m in mantissas]
        ticks = [t for t in ticks if lo * 0.999 <= t <= hi * 1.001]
        if len(ticks) >= 3:
            return ticks
    return ticks


def training_curves(checkpoints: Any, labels: Sequence[str] | None = None) -> Any:
    """Loss and accuracy per epoch, train (solid) and validation (dashed), one colour per run.

    `checkpoints`: checkpoint paths, Checkpoint objects or history lists (per-epoch dicts with
    train_loss, train_acc, val_loss, val_acc), or one of these. `labels`: one legend label per
    run (default: the file stem and the model name).
    """
    runs = _runs(checkpoints, labels)
    fig = _figure(10.0, 4.2)
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator, NullFormatter, PercentFormatter

    ax_loss, ax_acc = fig.subplots(1, 2)
    colors = [f"C{i % 10}" for i in range(len(runs))]
    run_handles, positive, loss_values = [], True, []
    for (label, history), color in zip(runs, colors):
        epochs = np.array([e.get("epoch", i + 1) for i, e in enumerate(history)], dtype=np.float64)
        marker = "o" if len(history) <= 30 else None
        for ax, key in ((ax_loss, "loss"), (ax_acc, "acc")):
            for split, style in (("train", "-"), ("val", "--")):
                values = _column(history, f"{split}_{key}")
                if np.isnan(values).all():
                    continue
                if key == "loss":
                    positive &= bool(np.nanmin(values) > 0)
                    loss_values += [float(np.nanmin(values)), float(np.nanmax(values))]
                ax.plot(epochs, values, style, color=color, marker=marker, markersize=3.5,
                        label=f"{label} {split}")
        val_acc = _column(history, "val_acc")
        best = f", best val {np.nanmax(val_acc):.2%}" if not np.isnan(val_acc).all() else ""
        run_handles.append(Line2D([], [], color=color, lw=2, label=f"{label}{best}"))
    if positive and loss_values:
        # log scale, labelled with plain numbers (0.05, 0.1, 0.2) rather than 2x10^-1
        ax_loss.set_yscale("log")
        ticks = _log_ticks(min(loss_values), max(loss_values))
        ax_loss.set_yticks(ticks, [f"{t:g}" for t in ticks])
        ax_loss.yaxis.set_minor_formatter(NullFormatter())
        ax_loss.set_ylabel("cross-entropy (log scale)")
    else:
        ax_loss.set_ylabel("cross-entropy")
    ax_loss.set_title("loss")
    ax_acc.set_title("accuracy")
    ax_acc.yaxis.set_major_formatter(PercentFormatter(1.0))
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="major", alpha=0.3)
    ax_loss.legend(handles=run_handles, fontsize=8, loc="upper right")
    style_handles = [Line2D([], [], color="0.3", ls="-", label="train"),
                     Line2D([], [], color="0.3", ls="--", label="validation")]
    ax_acc.legend(handles=style_handles, fontsize=8, loc="lower right")
    return fig


# --- learned filters -----------------------------------------------------------------------------

