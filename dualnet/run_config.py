"""A training run's configuration: `RunConfig`, the checks of its fields, and its resolution
against the data (fields left at None follow the data's recipe, dualnet.recipes).

A resolved configuration is what a run's checkpoint stores (`train_config`), so a resumed run keeps
the model and recipe chosen when it started.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import models, optim
from .errors import UsageError, whole_number
from .recipes import DEFAULT_OPTIMIZER, DEFAULT_SCHEDULE, OPTIONAL_RECIPE_FIELDS, RECIPE_FIELDS, Recipe, recipe_for
from .schedules import SCHEDULES

__all__ = ["RunConfig", "check_field", "MAX_AUGMENT_SHIFT", "OPTIONAL_CONFIG", "RECIPE_FIELDS"]

MAX_AUGMENT_SHIFT = 8
# train_config keys that checkpoints of older versions may lack, with the value those runs used
OPTIONAL_CONFIG: dict[str, Any] = {"validation": 10000, "num_classes": None, "augment_crop": 0, "augment_flip": False,
                                   "normalize": False, "stream": False, "image_size": None, "channels": None,
                                   "test_fraction": None, "strict": False}


def _int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    number = whole_number(value, minimum, maximum)
    if number is None:
        expected = f"in [{minimum}, {maximum}]" if maximum is not None else "> 0" if minimum == 1 else f">= {minimum}"
        raise UsageError(f"RunConfig.{name} must be an integer {expected}, got {value!r}")
    return number


def _float(name: str, value: Any, positive: bool) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or (
            value <= 0 if positive else value < 0):
        raise UsageError(f"RunConfig.{name} must be a finite number {'>' if positive else '>='} 0, got {value!r}")
    return float(value)


def _choice(name: str, value: Any, options: Iterable[str]) -> str:
    options = list(options)
    if value not in options:
        raise UsageError(f"RunConfig.{name}: {value!r} is not one of {', '.join(map(repr, options))}")
    return str(value)


def check_field(name: str, value: Any) -> Any:
    """`value` checked (and ints made floats where a float is due) for RunConfig field `name`.

    The rules are those of `dualnet train`'s options. Raises ValueError naming the field, what it
    expects and what it got.
    """
    if name in ("limit", "clip_grad", "validation", "num_classes", "image_size", "channels", "test_fraction",
                *RECIPE_FIELDS, *OPTIONAL_RECIPE_FIELDS) and value is None:
        return None  # unset: the data decides (the recipe, the default split, the labels' classes)
    if name == "model":
        return _choice(name, value, models.names())
    if name == "data":
        if not isinstance(value, (str, os.PathLike)):
            raise UsageError(f"RunConfig.data must be 'mnist', 'digits' or a path, got {value!r}")
        return str(value)
    if name in ("epochs", "batch_size", "limit", "num_classes"):
        return _int(name, value, 1)
    if name in ("seed", "validation"):
        return _int(name, value, 0)
    if name in ("augment_shift", "augment_crop"):
        return _int(name, value, 0, MAX_AUGMENT_SHIFT)
    if name == "image_size":
        size = tuple(value) if isinstance(value, (list, tuple)) else ()
        if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1024
                                     for v in size):
            raise ValueError(f"RunConfig.image_size must be two integers in [1, 1024] (height, width), got {value!r}")
        return size
    if name == "channels":
        if value not in (1, 3) or isinstance(value, bool):
            raise ValueError(f"RunConfig.channels must be 1, 3 or None (RGB if any image has colour), got {value!r}")
        return int(value)
    if name == "test_fraction":
        fraction = _float(name, value, positive=False)
        if fraction >= 1:
            raise ValueError(f"RunConfig.test_fraction must be a number in [0, 1), got {value!r}")
        return fraction
    if name in ("normalize", "augment_flip", "stream", "strict"):
        if not isinstance(value, bool):
            raise UsageError(f"RunConfig.{name} must be True or False, got {value!r}")
        return value
    if name in ("lr", "clip_grad"):
        return _float(name, value, positive=True)
    if name == "weight_decay":
        return _float(name, value, positive=False)
    if name == "momentum":
        momentum = _float(name, value, positive=False)
        if momentum >= 1:
            raise UsageError(f"RunConfig.momentum must be a number in [0, 1), got {value!r}")
        return momentum
    if name == "optimizer":
        return _choice(name, value, optim.OPTIMIZERS)
    if name == "schedule":
        return _choice(name, value, SCHEDULES)
    known = ", ".join(f.name for f in dataclasses.fields(RunConfig))
    raise UsageError(f"RunConfig has no field {name!r}; known: {known}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a training run.

    Every value is checked on construction (`check_field`); ints given for float fields become floats.
    `limit` keeps the first N images of each split; `validation` holds out the last N training images
    (None: a sixth, at most 10,000); `clip_grad` clips the global gradient norm; `augment_shift` shifts
    training images by up to that many pixels, `augment_crop` crops them at random after padding that
    many zeros and `augment_flip` mirrors half of them (dn.data.augment_batch); `num_classes`
    overrides the count the labels give (labels outside it are refused); `normalize` normalizes inputs
    per channel with the training split's mean and std (stored with the model); `stream` reads an HDF5
    file's images batch by batch instead of loading its splits (dn.data.load(..., stream=True)). For an
    image folder, `image_size` (height, width), `channels` (1, 3; None: RGB if any image has colour) and
    `test_fraction` say how it is prepared (None: dualnet.data.folder_cache's defaults) and `strict`
    refuses unreadable images instead of skipping them. Fields of
    RECIPE_FIELDS left at None follow the data's recipe (dualnet.recipes: on MNIST lenet5, 10 epochs,
    batch 64, lr 0.02, shifts of 1 pixel); `resolved` fills them in, and a run stores the resolved
    configuration.
    """

    model: str | None = None
    data: str = "mnist"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    momentum: float = 0.9
    weight_decay: float | None = None
    schedule: str | None = None
    augment_shift: int | None = None
    seed: int = 0
    limit: int | None = None
    clip_grad: float | None = None
    validation: int | None = None
    num_classes: int | None = None
    augment_crop: int | None = None
    augment_flip: bool | None = None
    normalize: bool | None = None
    stream: bool = False
    image_size: tuple[int, int] | None = None
    channels: int | None = None
    test_fraction: float | None = None
    strict: bool = False

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, check_field(f.name, getattr(self, f.name)))

    def to_dict(self) -> dict[str, Any]:
        """The configuration as stored in a checkpoint's `train_config` (JSON-ready)."""
        values = dataclasses.asdict(self)
        if self.image_size is not None:
            values["image_size"] = list(self.image_size)
        return values

    def data_options(self) -> dict[str, Any]:
        """How the data is prepared, as `dn.data.load`'s keywords (image folders use them)."""
        return {"image_size": self.image_size, "channels": self.channels, "test_fraction": self.test_fraction,
                "strict": self.strict}

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with `changes` applied (and checked)."""
        return dataclasses.replace(self, **changes)

    def recipe(self, shape: tuple[int, int, int]) -> Recipe:
        """The data's recipe (by the data's name, else by the images' `shape` (C, H, W)), with a given
        model in its place."""
        recipe = recipe_for(shape, self.data)
        return recipe if self.model is None else dataclasses.replace(recipe, model=self.model)

    def resolved(self, shape: tuple[int, int, int]) -> RunConfig:
        """A copy with every field of RECIPE_FIELDS left at None taken from the recipe for `shape`."""
        recipe = self.recipe(shape)
        values = recipe.values()
        return self.replace(**{k: values[k] for k in RECIPE_FIELDS if getattr(self, k) is None},
                            optimizer=self.optimizer or recipe.optimizer or DEFAULT_OPTIMIZER,
                            schedule=self.schedule or recipe.schedule or DEFAULT_SCHEDULE)

    @property
    def is_resolved(self) -> bool:
        return all(getattr(self, k) is not None for k in (*RECIPE_FIELDS, *OPTIONAL_RECIPE_FIELDS))

    def make_optimizer(self, params: Iterable[Any]) -> optim.Optimizer:
        """This configuration's optimizer over `params` (of a resolved configuration)."""
        if not self.is_resolved or self.lr is None:
            raise UsageError("RunConfig.make_optimizer needs a resolved configuration (RunConfig.resolved(shape))")
        return optim.make(self.optimizer or DEFAULT_OPTIMIZER, params, self.lr, self.momentum, self.weight_decay or 0.0)


def recipe_line(config: RunConfig, shape: tuple[int, ...]) -> str:
    """The model and recipe a resolved run follows, in one line, e.g. `model digits-cnn (recipe digits
    for 1x8x8 images, 10 classes): 20 epochs, batch 32, lr 0.05, no augmentation`."""
    name = config.recipe(tuple(shape)).name  # type: ignore[arg-type]
    epochs = f"{config.epochs} epoch" + ("" if config.epochs == 1 else "s")
    parts = [epochs, f"batch {config.batch_size}", f"lr {config.lr:g}"]
    if config.weight_decay:
        parts.append(f"weight decay {config.weight_decay:g}")
    augment = [f"shift {config.augment_shift}"] if config.augment_shift else []
    augment += [f"crop {config.augment_crop}"] if config.augment_crop else []
    augment += ["flip"] if config.augment_flip else []
    parts.append(" + ".join(augment) if augment else "no augmentation")
    if (config.optimizer, config.schedule) != ("nesterov", "cosine"):
        parts.append(f"{config.optimizer} SGD" if config.optimizer in ("momentum", "nesterov", "sgd")
                     else str(config.optimizer))
        parts.append(f"{config.schedule} schedule")
    if config.normalize:
        parts.append("normalized per channel")
    return (f"model {config.model} (recipe {name} for {'x'.join(map(str, shape))} images, {config.num_classes} "
            f"classes): " + ", ".join(parts))
