"""What a data source says about itself beyond its arrays: class names and how its images were
prepared (stored with a model trained on it, so `predict` names classes and prepares photos alike),
and `describe` (`dualnet data info`): shapes, classes with their counts, splits, dtype, source.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import numpy as np

from .dataset import MissingTestSplit
from .sources import NAMED_SOURCES, folder_options, load

__all__ = ["describe", "source_metadata"]


def _h5_attrs(path: pathlib.Path) -> dict[str, Any]:
    """class_names and image_preparation from an HDF5 file's root attributes (JSON), when valid."""
    import h5py

    out: dict[str, Any] = {}
    try:
        with h5py.File(path, "r") as f:
            for key in ("class_names", "image_preparation"):
                if key in f.attrs:
                    value = json.loads(f.attrs[key])
                    out[key] = value
    except (OSError, ValueError, TypeError):
        return {}
    names = out.get("class_names")
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        out.pop("class_names", None)
    if not isinstance(out.get("image_preparation"), dict):
        out.pop("image_preparation", None)
    return out


def resolve_file(source: str | os.PathLike, image_size=None, channels=None, test_fraction=None,
                 strict: bool = False) -> pathlib.Path | None:
    """The HDF5 file `source` is read from (an image folder: its cache, made if needed), or None."""
    from .folder_cache import folder_cache
    from .folders import looks_like_image_folder

    if isinstance(source, str) and source in NAMED_SOURCES:
        from .named import named_file

        return named_file(source)
    path = pathlib.Path(source).expanduser()
    if path.is_dir() and looks_like_image_folder(path):
        return folder_cache(path, folder_options(image_size, channels, test_fraction), strict=strict)
    if path.is_file() and path.suffix.lower() in (".h5", ".hdf5", ".he5"):
        return path
    return None


def source_metadata(source: str | os.PathLike, image_size=None, channels=None, test_fraction=None,
                    strict: bool = False) -> dict[str, Any]:
    """{"class_names": [...], "image_preparation": {...}} as far as `source` holds them (may be empty)."""
    from .named import NAMED

    if isinstance(source, str) and source in NAMED:
        return {"class_names": list(NAMED[source].class_names)}
    path = resolve_file(source, image_size, channels, test_fraction, strict)
    return _h5_attrs(path) if path is not None else {}


def describe(source: str | os.PathLike, **prepare: Any) -> dict[str, Any]:
    """Image shape, dtype, classes (names, per-class counts per split) and splits of `source`;
    HDF5 data is described from its labels alone (the images are not read)."""
    path = resolve_file(source, **prepare)
    stream = path is not None
    splits: dict[str, Any] = {}
    shape = None
    num_classes = 0
    for split in ("all-train", "test"):
        try:
            data = load(source, split, stream=stream, **prepare)
        except MissingTestSplit:
            continue
        shape = data.shape
        num_classes = max(num_classes, data.num_classes)
        splits["train" if split == "all-train" else split] = data.labels
        if hasattr(data, "close"):
            data.close()
    meta = source_metadata(source, **prepare)
    names = meta.get("class_names") or [str(i) for i in range(num_classes)]
    counts = {k: np.bincount(v, minlength=num_classes).tolist() for k, v in splits.items()}
    out: dict[str, Any] = {"source": str(source), "file": str(path) if path is not None else None,
                           "image_shape": list(shape or ()), "channels": (shape or (0,))[0], "dtype": _dtype(path),
                           "classes": names, "counts": counts, "splits": {k: len(v) for k, v in splits.items()}}
    if "image_preparation" in meta:
        out["image_preparation"] = meta["image_preparation"]
    return out


def _dtype(path: pathlib.Path | None) -> str:
    if path is None:
        return "uint8"
    import h5py

    with h5py.File(path, "r") as f:
        for name in ("train/images", "images"):
            if name in f:
                return str(f[name].dtype)
    return "unknown"
