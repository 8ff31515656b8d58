"""`dn.predict`: pictures to classes with a trained model, the one inference pipeline.

Files are prepared as the model's input by dualnet.data.prepare.load_inputs (digit models: MNIST's
own preparation; colour models: resize and centre crop), or, for a model trained on a folder of
photos (its checkpoint's "image_preparation"), exactly as that folder's photos were
(dualnet.data.photo); the model's normalization, dtype and device are applied, the eval-mode forward
runs in batches, and softmax probabilities give each image's top classes with their names and,
where the answer is doubtful, a hint. `dualnet predict`, its `--show-input` and `dualnet featuremaps`
use the same preparation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import to_device, to_numpy
from .errors import DataError
from .layers.bn_fold import eval_pass
from .layers.grad_mode import no_grad

__all__ = ["LOW_CONFIDENCE", "NO_INK", "Prediction", "class_names", "hint", "photo_preparation", "predict",
           "prepare_inputs"]

#: below this top probability the answer comes with a hint that the image may not be one of the classes
LOW_CONFIDENCE = 0.5
#: the answer for a digit model's blank image: no class is named
NO_INK = ("no ink found: the image is blank once its background is taken away; a digit model needs a digit "
          "drawn on a plain background")
_BATCH = 256


@dataclass(frozen=True)
class Prediction:
    """One image's answer. `top`: (class, name, probability) best first, empty when no ink was
    found; `probabilities`: (K,) float64 softmax of the logits; `source`: the file, if any."""

    probabilities: np.ndarray
    top: list[tuple[int, str, float]]
    hint: str | None
    source: str | None = None

    @property
    def label(self) -> int | None:
        return self.top[0][0] if self.top else None

    @property
    def name(self) -> str | None:
        return self.top[0][1] if self.top else None

    @property
    def probability(self) -> float | None:
        return self.top[0][2] if self.top else None


def class_names(metadata: dict | None, k: int) -> list[str]:
    """The checkpoint's class names (metadata "class_names", K strings), else "0" .. "K-1"."""
    names = (metadata or {}).get("class_names")
    if isinstance(names, list) and len(names) == k and all(isinstance(n, str) for n in names):
        return names
    return [str(i) for i in range(k)]


def hint(top_probability: float, channels: int) -> str | None:
    """A one-line hint when the top probability is low, else None."""
    if top_probability >= LOW_CONFIDENCE:
        return None
    kind = ("a single handwritten digit, dark on light or light on dark, on a plain background"
            if channels == 1 else "one object of the model's classes, filling most of the picture")
    return (f"the top probability is only {top_probability:.0%}: the image may not show any of the model's "
            f"classes (this model expects {kind})")


def input_shape(model: Any) -> tuple[int, int, int]:
    """The (C, H, W) a model takes, C = 1 (digit) or 3 (RGB); MNIST's when the model does not say."""
    shape = tuple(getattr(model, "input_shape", None) or (1, 28, 28))
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise DataError(f"the model takes inputs of shape {shape}; prediction prepares 1-channel (digit) or "
                        "3-channel (RGB) images, of shape (1, H, W) or (3, H, W)")
    return (int(shape[0]), int(shape[1]), int(shape[2]))


def prepare_inputs(model: Any, paths: Sequence[str | os.PathLike] | str | os.PathLike,
                   invert: str = "auto") -> np.ndarray:
    """Image files prepared for `model`: float32 (N, C, H, W) in [0, 1], before normalization.
    invert ("auto", "yes", "no") applies to digit models only."""
    from .data import prepare

    shape = input_shape(model)
    if invert not in ("auto", "yes", "no"):
        raise DataError(f"invert must be one of auto, yes, no, not {invert!r}")
    if shape[0] == 3 and invert != "auto":
        raise DataError(f"invert={invert!r} applies to digit (1-channel) models; this model takes RGB images")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if photo_preparation(model) is not None:
        # trained on a folder of photos: each file prepared as the folder's were (dualnet.data.photo)
        from .data.photo import photo_input

        return photo_input([os.fspath(p) for p in paths], shape[1:], shape[0])
    return prepare.load_inputs([os.fspath(p) for p in paths], shape, invert)


def photo_preparation(model: Any) -> dict | None:
    """The checkpoint's "image_preparation" (a model trained on a folder of photos), when it matches
    the model's input channels; else None (digit or colour preparation)."""
    prep = (getattr(model, "metadata", None) or {}).get("image_preparation")
    if isinstance(prep, dict) and prep.get("channels") == input_shape(model)[0]:
        return prep
    return None


def predict(model: Any, images: Any, top: int = 3, invert: str = "auto",
            batch_size: int = _BATCH) -> list[Prediction]:
    """Classify images with `model` (a checkpoint's model: dn.load(path)).

    images: file paths (one path counts as a list), prepared like the training data; or a float
    array (N, C, H, W) in [0, 1] already prepared (prepare_inputs), in the model's input shape.
    The model's normalization is applied here. Returns one Prediction per image, in order.
    """
    from .data import check_normalization, model_normalization, normalize

    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise DataError(f"top must be a positive integer, not {top!r}")
    shape = input_shape(model)
    if isinstance(images, np.ndarray):
        x, sources = _checked_array(images, shape), [None] * len(images)
    else:
        paths = [images] if isinstance(images, (str, os.PathLike)) else list(images)
        x, sources = prepare_inputs(model, paths, invert), [os.fspath(p) for p in paths]
    norm = model_normalization(model)
    fed = x if norm is None else normalize(x, check_normalization(norm, shape[0], "metadata"))
    params = list(model.parameters())
    fed = fed.astype(params[0].data.dtype if params else np.float32, copy=False)
    probabilities = _probabilities(model, fed, batch_size)
    names = class_names(getattr(model, "metadata", None), probabilities.shape[1])
    photos = photo_preparation(model) is not None
    out = []
    for p, xi, source in zip(probabilities, x, sources):
        if shape[0] == 1 and not photos and not xi.any():  # digit_input found no ink: naming a class would be a guess
            out.append(Prediction(p, [], NO_INK, source))
            continue
        order = np.argsort(-p, kind="stable")[:top]
        out.append(Prediction(p, [(int(k), names[k], float(p[k])) for k in order], hint(float(p[order[0]]), shape[0]),
                              source))
    return out


def _checked_array(images: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    if images.ndim != 4 or tuple(images.shape[1:]) != shape:
        raise DataError(f"images of shape {images.shape}: the model takes (N, {', '.join(map(str, shape))}); pass "
                        "file paths, or arrays prepared by dn.inference.prepare_inputs")
    if images.dtype.kind != "f" or not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise DataError("images must be finite floats in [0, 1] (prepared, before normalization)")
    return images


def _probabilities(model: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Softmax (float64) of the eval-mode logits of x (N, C, H, W), in batches; the model's
    train/eval mode is left as it was."""
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with no_grad(), eval_pass():  # inference: nothing kept for backward; batch norms fold once
            logits = [to_numpy(model(to_device(x[i:i + batch_size], model.device))).astype(np.float64)
                      for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    z = np.concatenate(logits) if logits else np.zeros((0, 0))
    if z.ndim != 2:
        raise DataError(f"the model's output has shape {z.shape}; prediction needs class scores (N, K)")
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)
