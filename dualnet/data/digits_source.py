"""The 8x8 handwritten digits (source name "digits") as a Dataset.

From scikit-learn's bundled copy (`sklearn.datasets.load_digits`) when scikit-learn is importable,
else from the IDX files shipped with dualnet (data/digits, written from that same copy: see its
README). Both give identical arrays: pixel counts 0..16 become uint8 `round(v * 255 / 16)`, and the
1,797 records are split by `numpy.random.default_rng(0).permutation(1797)`: its first 360 indices
(sorted) are the test split, the other 1,437 (sorted) the training data.
"""

from __future__ import annotations

import importlib.resources
import pathlib

import numpy as np

from ..errors import DataError
from .dataset import Dataset, _checked, _rows
from .idx import read_idx

DIGITS_RECORDS = 1797
DIGITS_TEST_RECORDS = 360
DIGITS_NUM_CLASSES = 10
_SPLIT_SEED = 0


def bundled_digits_dir() -> pathlib.Path:
    """The folder of the 8x8 digits IDX files shipped with dualnet (installed package or checkout)."""
    try:
        candidate = importlib.resources.files("dualnet_data") / "digits"
    except (ImportError, TypeError):
        candidate = None
    if isinstance(candidate, pathlib.Path) and (candidate / "train-images-idx3-ubyte.gz").is_file():
        return candidate
    # this file is dualnet/data/digits_source.py: the checkout root is three levels up
    checkout = pathlib.Path(__file__).resolve().parents[2] / "data" / "digits"
    if (checkout / "train-images-idx3-ubyte.gz").is_file():
        return checkout
    raise DataError(f"the bundled 8x8 digits files are missing (looked in {candidate} and {checkout}); "
                    "pip install scikit-learn, or reinstall dualnet from a complete checkout")


def digits_from_sklearn() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images uint8 (1437, 8, 8), train labels, test images (360, 8, 8), test labels) from
    scikit-learn's copy. Raises ImportError when scikit-learn is not installed."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    counts, labels = np.asarray(bunch.images), np.asarray(bunch.target)
    if counts.shape != (DIGITS_RECORDS, 8, 8) or labels.shape != (DIGITS_RECORDS,):
        raise DataError(f"sklearn.datasets.load_digits gave images {counts.shape} and labels {labels.shape}; "
                        f"expected ({DIGITS_RECORDS}, 8, 8) and ({DIGITS_RECORDS},)")
    images = np.round(counts * 255 / 16).astype(np.uint8)
    order = np.random.default_rng(_SPLIT_SEED).permutation(DIGITS_RECORDS)
    test, train = np.sort(order[:DIGITS_TEST_RECORDS]), np.sort(order[DIGITS_TEST_RECORDS:])
    return images[train], labels[train], images[test], labels[test]


def digits_from_bundle() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The same four arrays as `digits_from_sklearn`, read from the bundled IDX files."""
    folder = bundled_digits_dir()
    return tuple(read_idx(folder / f"{part}-{kind}-idx{rank}-ubyte.gz")  # type: ignore[return-value]
                 for part in ("train", "t10k") for kind, rank in (("images", 3), ("labels", 1)))


def digits_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's copy when importable, else the bundled files (identical arrays either way).

    A scikit-learn that is installed but fails on import (a broken wheel, a NumPy ABI mismatch)
    falls back to the bundled files too, with one warning line saying so."""
    try:
        return digits_from_sklearn()
    except ImportError as exc:  # not installed: the bundle, silently; a part of it failing: say so
        if exc.name not in (None, "sklearn"):
            _warn_fallback(exc)
        return digits_from_bundle()
    except DataError:
        raise
    except Exception as exc:  # scikit-learn's own import failed
        _warn_fallback(exc)
        return digits_from_bundle()


def _warn_fallback(exc: BaseException) -> None:
    import warnings

    from ..optional import broken

    warnings.warn(f"digits: {broken('scikit-learn', exc, 'pip install --force-reinstall scikit-learn')}; "
                  "using the bundled copy of the digits (the same arrays)", RuntimeWarning, stacklevel=3)


def _load_digits(split: str, validation: int | None, limit: int | None, num_classes: int | None) -> Dataset:
    train_images, train_labels, test_images, test_labels = digits_arrays()
    images, labels = (test_images, test_labels) if split == "test" else (train_images, train_labels)
    rows = _rows(split, len(labels), validation, limit, "digits")
    images, labels, num_classes = _checked(images[rows], labels[rows], num_classes or DIGITS_NUM_CLASSES,
                                           f"digits:{split}", f"digits:{split}")
    return Dataset._from_checked(images, labels, f"digits:{split}", num_classes)
