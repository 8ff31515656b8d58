"""Figures and files: the matplotlib guard, figure factory, atomic PNG writes, shared helpers."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from ..errors import DualnetError
from ..outputs import OutputError, writing

INSTALL_HINT = "matplotlib is not installed; install it with: pip install 'dualnet[plot]'"
TITLED_FILTERS_MAX = 64     # up to this many kernel panels each gets a label; beyond, a compact grid
MOSAIC_FILTERS_ABOVE = 400  # beyond this many kernels, one mosaic image instead of one panel each
MAPS_PER_ROW = 16           # feature-map panels per row before a stage wraps onto another row

# --- figures and files ---------------------------------------------------------------------------


def require_matplotlib() -> None:
    """Raise DualnetError with the install command when matplotlib cannot be imported."""
    from ..optional import load

    for module in ("matplotlib", "matplotlib.backends.backend_agg", "matplotlib.figure"):
        load(module, INSTALL_HINT, "pip install --force-reinstall 'dualnet[plot]'", DualnetError)


def _figure(width: float, height: float, layout: str | None = "constrained") -> Any:
    """A pyplot-free Figure with an Agg canvas (and constrained layout unless layout=None)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 100) -> pathlib.Path:
    """Write `fig` to `path` as a PNG (creating the folder) through the guarded writer (dualnet.outputs)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = pathlib.Path(path)
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    try:
        with writing(path, "picture") as f:
            fig.savefig(f, format="png", dpi=dpi)
    except OutputError:
        raise
    except OSError as exc:
        raise DualnetError(f"cannot write picture to {path}: {exc.strerror or exc}") from None
    return path


def _model_of(obj: Any) -> Any:
    """A Sequential from a Sequential, a Checkpoint or a checkpoint path."""
    from ..layers import Sequential

    if isinstance(obj, Sequential):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        from .. import checkpoint

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

