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

from .curves import training_curves
from .evaluation import evaluation_figure
from .figure import INSTALL_HINT, require_matplotlib, save_figure
from .network import feature_maps, filters

__all__ = ["require_matplotlib", "save_figure", "training_curves", "filters", "feature_maps",
           "evaluation_figure", "INSTALL_HINT"]
