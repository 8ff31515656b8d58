"""Models, histories and assertions shared by the checkpoint tests."""

from __future__ import annotations

import pathlib

import numpy as np

import dualnet as dn
from dualnet.layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential

HISTORY = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.9 + e / 100, "val_acc": 0.95, "seconds": 12.5,
            "images_per_s": 4000.0 + e, "lr": 0.01 / e} for e in (1, 2, 3)]


def tiny(seed: int = 0, dtype=np.float32) -> Sequential:
    """1x8x8 -> conv 2x3x3 -> pool -> 18 -> dropout -> 4."""
    return Sequential(Conv2d(1, 2, 3, dtype=dtype, seed=seed), ReLU(), MaxPool2d(2), Flatten(),
                      Dropout(0.5, seed=seed + 7), Linear(18, 4, dtype=dtype, seed=seed + 1), input_shape=(1, 8, 8))


def assert_identical(a, b) -> None:
    a, b = dn.to_numpy(a), dn.to_numpy(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def assert_same_parameters(m1, m2) -> None:
    n1, n2 = dict(m1.named_parameters()), dict(m2.named_parameters())
    assert list(n1) == list(n2)
    for name in n1:
        assert_identical(n1[name].data, n2[name].data)


def no_temp_files(folder: pathlib.Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp-" in p.name or ".probe-" in p.name]


def set_grads(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.grad[...] = rng.standard_normal(p.shape).astype(p.data.dtype)
