"""Default training recipes by the data's image shape: what `dualnet train` trains when not told.

    recipe = recipe_for((3, 32, 32))      # Recipe(name="colour", model="resnet8", ...)

| data | recipe | model | why |
| --- | --- | --- | --- |
| 1x28x28 | mnist | lenet5, 10 epochs, lr 0.02, shift 1 | the measured MNIST defaults (99.4%) |
| one channel, at most 16x16 | digits | digits-cnn, 20 epochs, batch 32, lr 0.05 | 98% on the 8x8 digits in ~1 s |
| other one-channel | grey | lenet5, the MNIST settings | LeNet-5 adapts to the size |
| any other channel count | colour | resnet8, crop 4 + flip, normalized | the CIFAR-style defaults |

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

    def values(self) -> dict[str, Any]:
        """{RunConfig field: value} for every field the recipe decides."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "name"}


RECIPE_FIELDS = tuple(f.name for f in dataclasses.fields(Recipe) if f.name != "name")

_MNIST = Recipe("mnist", "lenet5", epochs=10, batch_size=64, lr=0.02, weight_decay=0.0, augment_shift=1)
# measured on --data digits (README): 98.06% test accuracy at seed 0 (96.9-98.6% over seeds 0-4), ~1 s
_DIGITS = Recipe("digits", "digits-cnn", epochs=20, batch_size=32, lr=0.05, weight_decay=0.0, augment_shift=0)
_GREY = dataclasses.replace(_MNIST, name="grey")
_COLOUR = Recipe("colour", "resnet8", epochs=30, batch_size=64, lr=0.05, weight_decay=5e-4, augment_shift=0,
                 augment_crop=4, augment_flip=True, normalize=True)


def recipe_for(shape: tuple[int, int, int]) -> Recipe:
    """The recipe for images of `shape` (C, H, W); raises ValueError when no zoo model takes it."""
    c, h, w = (int(d) for d in shape)
    if c == 1:
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
