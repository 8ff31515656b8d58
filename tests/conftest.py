"""Hypothesis profiles (the one place test settings live) and shared fixtures.

HYPOTHESIS_PROFILE=default (CI: the whole suite within minutes on 2 cores) or thorough
(many more examples, for a night run).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _gpu_skip_reason() -> str | None:
    from dualnet.backend import _cupy_status

    ok, reason = _cupy_status(0)
    return None if ok else reason


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any("gpu" in item.keywords for item in items):
        return
    reason = _gpu_skip_reason()
    if reason:
        skip = pytest.mark.skip(reason=f"no usable GPU: {reason}")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _cpu_default_device():
    """Every test starts on the CPU; tests that want another device say so."""
    import dualnet as dn

    dn.use_device("cpu")
    yield
    dn.use_device("cpu")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def dualnet_executable() -> str:
    """The installed `dualnet` console script, for tests that run it as a user would."""
    candidate = pathlib.Path(sys.executable).parent / "dualnet"
    found = str(candidate) if candidate.exists() else shutil.which("dualnet")
    if not found:
        pytest.fail("the `dualnet` console script is not installed next to this Python")
    return found


def write_colour_h5(path: pathlib.Path, n_train: int = 96, n_test: int = 32, size: int = 32, classes: int = 5,
                    seed: int = 0) -> pathlib.Path:
    """An HDF5 file of uint8 colour images (N, 3, size, size) in train/test groups, labels 0..classes-1,
    whose classes differ in mean colour (so a few steps of training learn something)."""
    import h5py

    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        for group, n in (("train", n_train), ("test", n_test)):
            labels = rng.integers(0, classes, n)
            tint = np.stack([labels * 40, 200 - labels * 40, (labels % 2) * 150], axis=1)[:, :, None, None]
            images = np.clip(rng.integers(0, 100, (n, 3, size, size)) + tint, 0, 255).astype(np.uint8)
            f.create_dataset(f"{group}/images", data=images, chunks=(min(n, 16), 3, size, size))
            f[f"{group}/labels"] = labels
    return path


@pytest.fixture(scope="session")
def colour_h5(tmp_path_factory) -> pathlib.Path:
    """A small colour dataset: 96 train / 32 test images (3, 32, 32) uint8 with labels in 0..4."""
    return write_colour_h5(tmp_path_factory.mktemp("colour") / "colour.h5")


@pytest.fixture
def restored_layer_registry():
    """For tests that register custom layer classes: dn.layers' registry is restored afterwards."""
    from dualnet import layers

    before = dict(layers.LAYER_TYPES)
    yield
    layers.LAYER_TYPES.clear()
    layers.LAYER_TYPES.update(before)
