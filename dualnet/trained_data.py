"""The data a checkpoint's model was trained on, and loading it again for that model.

A run's checkpoint records its configuration (`train_config`: the data, the validation split, the
class count, whether it streamed); `load_data_for` reads a split of that same data with the same
split and class count unless told otherwise, so evaluating a `--data digits` run needs no second
`--data digits`. Normalization needs nothing here: `dn.evaluate` and the plots take it from the
model. A model the data does not fit is refused naming the data given and the data recorded.
"""

from __future__ import annotations

import os
from typing import Any

from . import data as _data
from .errors import DataError
from .train import check_fits

__all__ = ["trained_on", "load_data_for"]

_KEYS = ("data", "validation", "num_classes", "stream")


def trained_on(model: Any) -> dict[str, Any]:
    """{"data", "validation", "num_classes", "stream"} as the model's checkpoint recorded them in
    its `train_config` metadata; a value the checkpoint does not record (a model saved by `dn.save`
    outside a run) is None."""
    stored = (getattr(model, "metadata", None) or {}).get("train_config")
    stored = stored if isinstance(stored, dict) else {}
    return {key: stored.get(key) for key in _KEYS}


def load_data_for(model: Any, split: str = "test", data: str | os.PathLike | None = None, *,
                  validation: int | None = None, limit: int | None = None, stream: bool | None = None,
                  model_name: str = "the model", data_param: str = "data", **options: Any) -> _data.Dataset:
    """One split of the data `model` was trained on, as its run split it, checked to fit the model.

    data: None for the recorded data (`trained_on(model)["data"]`, else "mnist"); the recorded
    validation split, class count and streaming apply when it is the recorded data, unless
    `validation` / `stream` are given. Raises DataError when the images do not fit the model,
    naming `data_param` (the caller's name for `data`: the CLI passes "--data") and the recorded data.
    options: passed on to dn.data.load (how a folder of photos is prepared).
    """
    recorded = trained_on(model)
    source = data if data is not None else recorded["data"] or "mnist"
    same = recorded["data"] is not None and str(source) == str(recorded["data"])
    if validation is None and same:
        validation = recorded["validation"]
    if stream is None:
        stream = bool(recorded["stream"]) if same else False
    num_classes = recorded["num_classes"] if same else None
    dataset = _data.load(source, split, validation=validation, limit=limit, num_classes=num_classes, stream=stream,
                         **options)
    try:
        check_fits(model, dataset, model_name)
    except DataError as exc:
        if recorded["data"] is None:
            hint = f"{data_param} {source} is not the data it was trained on? pass that data with {data_param}"
        elif same:
            hint = f"{model_name} records that it was trained on this data ({data_param} {source})"
        else:
            hint = (f"{model_name} was trained on {data_param} {recorded['data']}, not {data_param} {source}; "
                    f"leave {data_param} out to use its own data")
        raise DataError(f"{exc}; {hint}") from None
    return dataset
