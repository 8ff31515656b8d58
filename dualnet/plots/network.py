"""What a network learned: conv kernels and the feature maps of one image."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import to_device, to_numpy
from ..data.normalize import model_normalization, normalize
from ..errors import DualnetError
from ..inference import NO_INK, class_names
from .figure import MAPS_PER_ROW, MOSAIC_FILTERS_ABOVE, TITLED_FILTERS_MAX, _digit, _figure, _hide_ticks, _model_of


def _conv_layer(model: Any, layer: Any) -> Any:
    from ..layers import Conv2d

    if isinstance(layer, Conv2d):
        return layer
    convs = [lay.name for lay in model.layers if isinstance(lay, Conv2d)]
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
    from ..layers.conv import Conv2d
    from ..layers.elementwise import _Activation
    from ..layers.pooling import _Pool2d

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
    # the panel shows the image as given; the network sees it as it was trained (normalized, if so)
    fed = normalize(x, model_normalization(model))
    stages, final = _stages(model, to_device(fed.astype(dtype), model.device))
    if not stages:
        raise DualnetError("feature_maps: the model has no Conv2d or pooling layer with spatial output")
    title = f"input {'×'.join(map(str, x.shape[1:]))}"
    if x.shape[1] == 1 and not x.any():
        title += f": {NO_INK.split(':')[0]}"  # as dn.predict answers a blank digit image
    elif final.ndim == 2 and final.shape[0] == 1 and final.shape[1] > 1:
        p = np.exp(final[0].astype(np.float64) - final[0].max())
        p /= p.sum()
        names = class_names(getattr(model, "metadata", None), p.size)
        title += f": predicted {names[int(p.argmax())]} ({p.max():.1%})"
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

