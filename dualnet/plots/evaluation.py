"""Evaluation: the confusion matrix and the most confident mistakes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import to_numpy
from ..errors import DualnetError
from .figure import _digit, _figure


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
