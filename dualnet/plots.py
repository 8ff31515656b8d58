"""Pictures of a model and its training: curves, learned filters, feature maps, mistakes.

Every function returns a `matplotlib.figure.Figure` built without pyplot (no global state, no
display needed) and `save_figure` writes it as a PNG through the Agg canvas. matplotlib is an
optional dependency (`pip install 'dualnet[plot]'`), imported only when a picture is drawn, so
`import dualnet.plots` works without it. Parameters may live on any device.

    from dualnet import plots
    plots.save_figure(plots.training_curves(["runs/lenet5.h5"]), "curves.png")
    plots.save_figure(plots.filters(model, "conv1"), "filters.png")
    plots.save_figure(plots.feature_maps(model, test.images[0]), "maps.png")
    plots.save_figure(plots.evaluation_figure(dn.evaluate(model, test), test), "eval.png")
"""

from __future__ import annotations

import math
import os
import pathlib
import secrets
from typing import Any, Sequence

import numpy as np

from .backend import to_device, to_numpy
from .errors import DualnetError

__all__ = ["require_matplotlib", "save_figure", "training_curves", "filters", "feature_maps",
           "evaluation_figure"]

INSTALL_HINT = "matplotlib is not installed; install it with: pip install 'dualnet[plot]'"
TITLED_FILTERS_MAX = 64     # up to this many kernel panels each gets a label; beyond, a compact grid
MOSAIC_FILTERS_ABOVE = 400  # beyond this many kernels, one mosaic image instead of one panel each
MAPS_PER_ROW = 16           # feature-map panels per row before a stage wraps onto another row


# --- figures and files ---------------------------------------------------------------------------


def require_matplotlib() -> None:
    """Raise DualnetError with the install command when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401
    except ImportError:
        raise DualnetError(INSTALL_HINT) from None


def _figure(width: float, height: float, layout: str | None = "constrained") -> Any:
    """A pyplot-free Figure with an Agg canvas (and constrained layout unless layout=None)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 100) -> pathlib.Path:
    """Write `fig` to `path` as a PNG (creating the folder), atomically: temp file + os.replace."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = pathlib.Path(path)
    if path.is_dir():
        raise DualnetError(f"cannot write picture to {path}: it is an existing directory")
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise DualnetError(f"cannot write picture to {path}: {exc.strerror or exc}") from None
        raise
    return path


def _model_of(obj: Any) -> Any:
    """A Sequential from a Sequential, a Checkpoint or a checkpoint path."""
    from .sequential import Sequential

    if isinstance(obj, Sequential):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        from . import checkpoint

        return checkpoint.read(obj, device="cpu").model
    if isinstance(getattr(obj, "model", None), Sequential):
        return obj.model
    raise DualnetError(f"expected a dualnet Sequential, a Checkpoint or a checkpoint path, got {type(obj).__name__}")


def _hide_ticks(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _digit(ax: Any, image: np.ndarray) -> None:
    """Show one (C, H, W) image in [0, 1]: gray for one channel, RGB for three."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 3:
        ax.imshow(np.clip(image.transpose(1, 2, 0), 0, 1), interpolation="nearest")
    else:
        ax.imshow(image.reshape(image.shape[-2:]) if image.ndim == 2 or image.shape[0] == 1 else image[0],
                  cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    _hide_ticks(ax)


# --- training curves -----------------------------------------------------------------------------


def _is_history(obj: Any) -> bool:
    return isinstance(obj, (list, tuple)) and len(obj) > 0 and all(isinstance(e, dict) for e in obj)


def _runs(checkpoints: Any, labels: Sequence[str] | None) -> list[tuple[str, list[dict]]]:
    from . import checkpoint

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


def _conv_layer(model: Any, layer: Any) -> Any:
    from .layers import Conv2d

    if isinstance(layer, Conv2d):
        return layer
    convs = [l.name for l in model.layers if isinstance(l, Conv2d)]
    available = ", ".join(convs) if convs else "none"
    try:
        found = model[layer]
    except (KeyError, IndexError, TypeError):
        raise DualnetError(f"no layer {layer!r} in the model; its conv layers: {available}") from None
    if not isinstance(found, Conv2d):
        raise DualnetError(f"layer {found.name!r} is a {type(found).__name__}, not a Conv2d; "
                           f"the model's conv layers: {available}")
    return found


def filters(model: Any, layer: str | int = "conv1") -> Any:
    """The kernels of one Conv2d as small images on one colour scale symmetric around 0.

    Rows are output channels, columns input channels (per group); kernels with one input
    channel are laid out in rows of 8. `model`: a Sequential, a Checkpoint or a checkpoint path;
    `layer`: a layer name ("conv2"), an index or the Conv2d itself.
    """
    model = _model_of(model)
    conv = _conv_layer(model, layer)
    w = np.asarray(to_numpy(conv.weight.data), dtype=np.float64)
    n_out, n_in, kh, kw = w.shape
    vmax = float(np.abs(w).max()) or 1.0
    count = n_out * n_in
    shape = f"{n_out}×{n_in}×{kh}×{kw}"
    if count > MOSAIC_FILTERS_ABOVE:
        return _filter_mosaic(conv, w, vmax, shape)
    titled = count <= TITLED_FILTERS_MAX
    if n_in == 1:
        cols = min(n_out, 8)
        rows = math.ceil(n_out / cols)
    else:
        rows, cols = n_out, n_in
    # laid out by hand in inches: constrained layout takes seconds over a hundred panels
    panel = 1.0 if titled else 0.42
    hgap = 0.1 if titled else 0.05
    vgap = 0.3 if n_in == 1 and titled else hgap
    left, bar = (0.15 if n_in == 1 else 0.6), 0.95
    top, bottom = (0.6 if n_in == 1 else 0.8), 0.12
    width = left + cols * panel + (cols - 1) * hgap + bar
    if width < 4.0:  # room for the title
        left, bar = left + (4.0 - width) / 2, bar + (4.0 - width) / 2
        width = 4.0
    height = top + rows * panel + (rows - 1) * vgap + bottom
    fig = _figure(width, height, layout=None)
    gs = fig.add_gridspec(rows, cols, left=left / width, right=1 - bar / width, top=1 - top / height,
                          bottom=bottom / height, wspace=hgap / panel, hspace=vgap / panel)
    image = None
    for k in range(rows * cols if n_in > 1 else n_out):
        r, c = divmod(k, cols)
        o, i = (k, 0) if n_in == 1 else (r, c)
        ax = fig.add_subplot(gs[r, c])
        image = ax.imshow(w[o, i], cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        _hide_ticks(ax)
        if n_in == 1 and titled:
            ax.set_title(f"filter {o}", fontsize=9)
        elif n_in > 1:
            if r == 0:
                ax.set_title(f"in {i}", fontsize=8 if titled else 7)
            if c == 0:
                ax.set_ylabel(f"out {o}", fontsize=8 if titled else 7, rotation=0, ha="right", va="center")
    grid_h = rows * panel + (rows - 1) * vgap
    bar_h = min(grid_h, max(1.0, 0.8 * grid_h))
    cax = fig.add_axes(((width - bar + 0.15) / width, (bottom + (grid_h - bar_h) / 2) / height,
                        0.14 / width, bar_h / height))
    fig.colorbar(image, cax=cax, label="weight")
    cax.tick_params(labelsize=8)
    groups = f", groups={conv.groups}" if conv.groups > 1 else ""
    fig.suptitle(f"{conv.name}: {shape} kernels{groups}\none colour scale: red > 0 > blue", fontsize=10,
                 y=1 - 0.06 / height, va="top")
    return fig


def _filter_mosaic(conv: Any, w: np.ndarray, vmax: float, shape: str) -> Any:
    """Many kernels as one image: out channels down, in channels across, 1-pixel gaps."""
    import matplotlib

    n_out, n_in, kh, kw = w.shape
    mosaic = np.full((n_out * (kh + 1) - 1, n_in * (kw + 1) - 1), np.nan)
    for o in range(n_out):
        for i in range(n_in):
            mosaic[o * (kh + 1):o * (kh + 1) + kh, i * (kw + 1):i * (kw + 1) + kw] = w[o, i]
    scale = min(0.07, 9.0 / mosaic.shape[1], 12.0 / mosaic.shape[0])
    fig = _figure(max(mosaic.shape[1] * scale + 3.0, 4.5), mosaic.shape[0] * scale + 1.4)
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="0.35")  # gaps darker than any weight
    image = ax.imshow(mosaic, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
    step_o, step_i = max(1, n_out // 10), max(1, n_in // 10)
    ax.set_yticks([o * (kh + 1) + kh / 2 - 0.5 for o in range(0, n_out, step_o)], range(0, n_out, step_o))
    ax.set_xticks([i * (kw + 1) + kw / 2 - 0.5 for i in range(0, n_in, step_i)], range(0, n_in, step_i))
    ax.set_ylabel("output channel")
    ax.set_xlabel("input channel")
    ax.tick_params(labelsize=7, length=2)
    fig.colorbar(image, ax=ax, label="weight", shrink=0.5, aspect=25)
    fig.suptitle(f"{conv.name}: {shape} kernels\none colour scale: red > 0 > blue", fontsize=10)
    return fig


# --- feature maps --------------------------------------------------------------------------------


def _input_batch(model: Any, image: Any) -> np.ndarray:
    x = np.asarray(to_numpy(image))
    if x.dtype.kind not in "fiu":
        raise DualnetError(f"feature_maps: the image has dtype {x.dtype}; expected numbers")
    x = x.astype(np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    expected = tuple(model.input_shape) if model.input_shape else None
    if x.ndim != 3 or (expected and x.shape != expected):
        want = "x".join(map(str, expected)) if expected else "(C, H, W)"
        raise DualnetError(f"feature_maps: the image has shape {tuple(np.shape(image))}; the model expects {want} "
                           "(an (H, W) image is taken as one channel)")
    return x[None]


def _stages(model: Any, x: Any) -> tuple[list[tuple[str, np.ndarray]], np.ndarray]:
    """(title, (C, H, W) activations) after each conv (and its activation) and pooling layer."""
    from .layers import Conv2d, _Activation, _Pool2d

    was_training = model.training
    model.eval()
    outputs = []
    try:
        h = x
        for layer in model.layers:
            h = layer.forward(h)
            outputs.append(h)
    finally:
        model.train(was_training)
    layers = model.layers
    stages = []
    for i, layer in enumerate(layers):
        if isinstance(layer, Conv2d):
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(nxt, _Activation):
                stages.append((f"{layer.name} + {nxt.name}", outputs[i + 1]))
            else:
                stages.append((layer.name, outputs[i]))
        elif isinstance(layer, _Pool2d):
            stages.append((layer.name, outputs[i]))
    stages = [(name, np.asarray(to_numpy(a), dtype=np.float64)[0]) for name, a in stages if a.ndim == 4]
    return stages, np.asarray(to_numpy(outputs[-1]), dtype=np.float64) if outputs else np.zeros(0)


def feature_maps(model: Any, image: Any, label: int | None = None) -> Any:
    """The input, then the activation maps after each conv (+ activation) and pooling stage.

    `image`: (H, W), (C, H, W) or (1, C, H, W) floats in [0, 1]. One row of panels per stage
    (wrapping after 16), each stage on its own colour scale, titled with layer name and shape;
    the input's title gives the model's prediction (and `label`, the true class, if given).
    """
    model = _model_of(model)
    x = _input_batch(model, image)
    dtype = next(iter(model.parameters())).data.dtype if model.num_parameters() else np.float32
    stages, final = _stages(model, to_device(x.astype(dtype), model.device))
    if not stages:
        raise DualnetError("feature_maps: the model has no Conv2d or pooling layer with spatial output")
    title = f"input {'×'.join(map(str, x.shape[1:]))}"
    if final.ndim == 2 and final.shape[0] == 1 and final.shape[1] > 1:
        p = np.exp(final[0] - final[0].max())
        p /= p.sum()
        title += f": predicted {int(p.argmax())} ({p.max():.1%})"
    if label is not None:
        title += f", true {int(label)}"
    panel = 0.62
    cols = max(min(a.shape[0], MAPS_PER_ROW) for _, a in stages)
    rows = [1] + [math.ceil(a.shape[0] / MAPS_PER_ROW) for _, a in stages]
    heights = [r * panel + 0.32 for r in rows]
    fig = _figure(max(cols, 4) * panel + 0.4, sum(heights) + 0.1)
    fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.0, hspace=0.0)
    subfigs = fig.subfigures(len(rows), 1, height_ratios=heights)
    # the input, centred
    sf = subfigs[0]
    gs = sf.add_gridspec(1, cols)
    ax = sf.add_subplot(gs[0, (cols - 1) // 2])
    _digit(ax, x[0])
    sf.suptitle(title, fontsize=9)
    for sf, n_rows, (name, maps) in zip(subfigs[1:], rows[1:], stages):
        n, hh, ww = maps.shape
        lo, hi = float(maps.min()), float(maps.max())
        if lo < 0:
            vmax = max(-lo, hi) or 1.0
            cmap, vmin = "RdBu_r", -vmax
        else:
            cmap, vmin, vmax = "magma", 0.0, hi or 1.0
        gs = sf.add_gridspec(n_rows, cols)
        per_row = min(n, MAPS_PER_ROW)
        for k in range(n):
            r, c = divmod(k, MAPS_PER_ROW)
            in_row = min(per_row, n - r * MAPS_PER_ROW)
            ax = sf.add_subplot(gs[r, (cols - in_row) // 2 + c])
            ax.imshow(maps[k], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            _hide_ticks(ax)
        sf.suptitle(f"{name}: {n}×{hh}×{ww}  (scale {vmin:.2g} to {vmax:.2g})", fontsize=9)
    return fig


# --- evaluation ----------------------------------------------------------------------------------


def evaluation_figure(result: dict, dataset: Any, worst: int = 16) -> Any:
    """Confusion matrix (left) and the `worst` most confidently misclassified images (right).

    `result`: the dict of `dualnet.evaluate(model, dataset)` (confusion, predictions,
    probabilities); `dataset`: the same Dataset, in the same order.
    """
    if worst < 0:
        raise DualnetError(f"evaluation_figure: worst must be >= 0, got {worst}")
    try:
        confusion = np.asarray(to_numpy(result["confusion"]), dtype=np.int64)
        pred = np.asarray(to_numpy(result["predictions"]), dtype=np.int64)
    except (KeyError, TypeError):
        raise DualnetError("evaluation_figure: `result` must be the dict dualnet.evaluate returns "
                           "(with 'confusion' and 'predictions')") from None
    probs = result.get("probabilities")
    probs = None if probs is None else np.asarray(to_numpy(probs), dtype=np.float64)
    images = np.asarray(dataset.images)
    true = np.asarray(dataset.labels, dtype=np.int64)
    if len(pred) != len(true):
        raise DualnetError(f"evaluation_figure: the result holds {len(pred)} predictions but the dataset "
                           f"{len(true)} images; pass the dataset that was evaluated")
    k = confusion.shape[0]
    wrong = np.flatnonzero(pred != true)
    if probs is not None and len(probs) == len(pred):
        confidence = probs[wrong, pred[wrong]]
        wrong = wrong[np.argsort(-confidence, kind="stable")]
    else:
        confidence = None
    shown = wrong[:worst]

    import matplotlib
    from matplotlib.colors import LogNorm

    fig = _figure(12.0, 6.0)
    left, right = fig.subfigures(1, 2, width_ratios=[1.0, 1.0] if len(shown) else [1.0, 0.01])
    ax = left.add_subplot()
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad="white")
    top = max(int(confusion.max()), 2)
    norm = LogNorm(vmin=1, vmax=top)
    image = ax.imshow(np.ma.masked_equal(confusion, 0), cmap=cmap, norm=norm, interpolation="nearest")
    if k <= 12:
        for t in range(k):
            for p in range(k):
                v = int(confusion[t, p])
                if v:
                    dark = norm(v) > 0.55
                    ax.text(p, t, f"{v:,}", ha="center", va="center", fontsize=8 if v < 1000 else 7,
                            color="white" if dark else "black")
    else:
        left.colorbar(image, ax=ax, label="count (log scale)", shrink=0.8)
    if k <= 20:
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = result.get("accuracy")
    n = int(result.get("n", len(true)))
    acc = f", accuracy {float(accuracy):.2%}" if accuracy is not None else ""
    ax.set_title(f"confusion matrix ({n:,} images{acc})", fontsize=10)
    if len(shown):
        cols = math.ceil(math.sqrt(len(shown)))
        rows = math.ceil(len(shown) / cols)
        axes = np.array(right.subplots(rows, cols, squeeze=False))
        for j, a in enumerate(axes.flat):
            if j >= len(shown):
                a.remove()
                continue
            i = shown[j]
            _digit(a, images[i])
            p = f" ({probs[i, pred[i]]:.0%})" if confidence is not None else ""
            a.set_title(f"true {true[i]} / pred {pred[i]}{p}", fontsize=8)
        what = "most confident mistakes" if confidence is not None else "first mistakes"
        right.suptitle(f"the {len(shown)} {what} (of {len(wrong):,})", fontsize=10)
    return fig
