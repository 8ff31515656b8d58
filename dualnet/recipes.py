"""Default training recipes by the data's image shape: what `dualnet train` trains when not told.

    recipe = recipe_for((3, 32, 32))      # Recipe(name="colour", model="resnet8", ...)

| data | recipe | model | why |
| --- | --- | --- | --- |
| 1x28x28 | mnist | lenet5, 10 epochs, lr 0.02, shift 1 | the measured MNIST defaults (99.4%) |
| one channel, at most 16x16 | digits | digits-cnn, 20 epochs, batch 32, lr 0.05 | 98% on the 8x8 digits in ~1 s |
| other one-channel | grey | lenet5, the MNIST settings | LeNet-5 adapts to the size |
| any other channel count | colour | resnet8, crop 4 + flip, normalized | the CIFAR-style defaults |

By name of the data (`recipe_for(shape, data)`), whatever the shape:

| data | recipe | model | why |
| --- | --- | --- | --- |
| fashion-mnist | fashion | fashion-cnn, 12 epochs, lr 0.02, wd 5e-4, flip | 92.75% test (docs/data.md) |
| cifar10 | cifar10-resnet20 | resnet20, 164 epochs, batch 128, lr 0.1, momentum, wd 1e-4, crop 4+flip, step | He 2016 |

A model that cannot take the shape is replaced by the first of `models.fitting_models(shape)`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from . import models
from .errors import UsageError

__all__ = ["Recipe", "RECIPE_FIELDS", "recipe_for"]


@dataclass(frozen=True)
class Recipe:
    """Values for the RunConfig fields left at None (see RECIPE_FIELDS), and the recipe's name."""

    name: str
    model: str
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    augment_shift: int
    augment_crop: int = 0  # random crop with this much zero padding
    augment_flip: bool = False  # random horizontal flip
    normalize: bool = False  # per-channel normalization computed on the training split
    # only recipes that need them set these (RunConfig's defaults otherwise: DEFAULT_OPTIMIZER, DEFAULT_SCHEDULE)
    optimizer: str | None = None
    schedule: str | None = None

    def values(self) -> dict[str, Any]:
        """{RunConfig field: value} for every field the recipe decides."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("name", *OPTIONAL_RECIPE_FIELDS)}


DEFAULT_OPTIMIZER, DEFAULT_SCHEDULE = "nesterov", "cosine"
OPTIONAL_RECIPE_FIELDS = ("optimizer", "schedule")  # RunConfig fields a recipe may set; else the defaults
RECIPE_FIELDS = tuple(f.name for f in dataclasses.fields(Recipe) if f.name not in ("name", *OPTIONAL_RECIPE_FIELDS))

_MNIST = Recipe("mnist", "lenet5", epochs=10, batch_size=64, lr=0.02, weight_decay=0.0, augment_shift=1)
# measured on --data digits (README): 98.06% test accuracy at seed 0 (96.9-98.6% over seeds 0-4), ~1 s
_DIGITS = Recipe("digits", "digits-cnn", epochs=20, batch_size=32, lr=0.05, weight_decay=0.0, augment_shift=0)
_GREY = dataclasses.replace(_MNIST, name="grey")
_COLOUR = Recipe("colour", "resnet8", epochs=30, batch_size=64, lr=0.05, weight_decay=5e-4, augment_shift=0,
                 augment_crop=4, augment_flip=True, normalize=True)


# lr 0.02 (not 0.05): 1.00 vs 1.56 training loss after 94 steps on 6,000 images; flips without crops:
# crops of 2 pixels left the small net under-fitted (90.78% test vs 91.66% without) (docs/data.md, Recipes)
_FASHION = Recipe("fashion", "fashion-cnn", epochs=12, batch_size=64, lr=0.02, weight_decay=5e-4, augment_shift=0,
                  augment_crop=0, augment_flip=True)
# He et al. 2016, section 4.2: 64k iterations at batch 128 on a 45k/5k split (about 164 epochs of 50k),
# lr 0.1 divided by 10 at 32k and 48k iterations, momentum 0.9 (not Nesterov), weight decay 1e-4,
# 4-pixel padded crops and flips, per-pixel mean subtracted. Departures: dualnet's "step" schedule
# divides after a third and two thirds of the epochs (the paper: a half and three quarters), and
# inputs are normalized per channel
_CIFAR_RESNET20 = Recipe("cifar10-resnet20", "resnet20", epochs=164, batch_size=128, lr=0.1, weight_decay=1e-4,
                         augment_shift=0, augment_crop=4, augment_flip=True, normalize=True, optimizer="momentum",
                         schedule="step")
BY_DATA = {"fashion-mnist": _FASHION, "cifar10": _CIFAR_RESNET20}


def recipe_for(shape: tuple[int, int, int], data: str | None = None) -> Recipe:
    """The recipe for `data` (BY_DATA) or, by shape, for images of `shape` (C, H, W); raises ValueError
    when no zoo model takes the shape."""
    c, h, w = (int(d) for d in shape)
    if data in BY_DATA:
        recipe = BY_DATA[data]
    elif c == 1:
        recipe = _MNIST if (h, w) == (28, 28) else _DIGITS if max(h, w) <= 16 else _GREY
    else:
        recipe = _COLOUR
    try:
        models.get(recipe.model, input_shape=(c, h, w))
    except ValueError:
        fitting = models.fitting_models((c, h, w))
        if not fitting:
            raise UsageError(f"no model of the zoo takes images of shape {(c, h, w)}") from None
        recipe = dataclasses.replace(recipe, model=fitting[0])
    return recipe
