"""fit's batch sources: each step's batch is the seeded order's rows, prepared as the data's pure
function of (seed, epoch, step), whether gathered on the device, prepared on the host or streamed."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from parts import tiny_data, tiny_model

import dualnet as dn
from dualnet.train.batches import DeviceBatches, HostBatches, batch_source
from dualnet.train.strategy import SingleProcess


def _epoch(source, epoch, steps, first=0):
    source.start_epoch(epoch, first)
    return [source.batch(s) for s in range(first, steps)]


def test_device_batches_follow_the_seeded_order_of_each_epoch():
    data, dev = tiny_data(22), dn.get_device()
    source = DeviceBatches(data, data.images, dev, SingleProcess(None), 8, seed=5)
    for epoch in (0, 1):
        batches = _epoch(source, epoch, 3)
        order = dn.data.epoch_order(22, 5, epoch)
        np.testing.assert_array_equal(np.concatenate([dn.to_numpy(b.y) for b in batches]), data.labels[order])
        np.testing.assert_array_equal(np.concatenate([dn.to_numpy(b.x) for b in batches]), data.images[order])
        assert [(b.size, b.weight) for b in batches] == [(8, 1.0), (8, 1.0), (6, 1.0)]


def test_host_batches_are_the_augmented_then_normalized_rows_of_seed_epoch_and_step():
    data, dev = tiny_data(20), dn.get_device()
    norm = {"mean": [0.25], "std": [2.0]}
    source = HostBatches(data, dev, SingleProcess(None), 8, 7, (1, 1, True), norm, np.dtype(np.float64))
    batches = _epoch(source, 2, 3)
    order = dn.data.epoch_order(20, 7, 2)
    for step, b in enumerate(batches):
        rows = order[step * 8:(step + 1) * 8]
        want = dn.data.normalize(dn.data.augment_batch(data.images[rows], 7, 2, step, 1, 1, True), norm)
        assert b.x.dtype == np.float64
        np.testing.assert_array_equal(dn.to_numpy(b.x), want.astype(np.float64))
        np.testing.assert_array_equal(dn.to_numpy(b.y), data.labels[rows])


@pytest.fixture
def streamed(tmp_path):
    import h5py

    data = tiny_data(21, seed=4)
    path = tmp_path / "tiny.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("train/images", data=(data.images * 255).round().astype(np.uint8), chunks=(4, 1, 4, 4))
        f["train/labels"] = data.labels
    return dn.data.load(path, "all-train", stream=True), dn.data.load(path, "all-train")


def test_a_streamed_epoch_equals_the_same_epoch_in_memory_from_any_first_step(streamed):
    on_disk, in_memory = streamed
    assert not isinstance(on_disk.images, np.ndarray)
    dev, strategy = dn.get_device(), SingleProcess(None)
    for first in (0, 2):
        read = HostBatches(on_disk, dev, strategy, 5, 1, (0, 0, False), None, np.dtype(np.float32))
        held = HostBatches(in_memory, dev, strategy, 5, 1, (0, 0, False), None, np.dtype(np.float32))
        with read:
            for a, b in zip(_epoch(read, 1, 5, first), _epoch(held, 1, 5, first), strict=True):
                np.testing.assert_array_equal(dn.to_numpy(a.x), dn.to_numpy(b.x))
                np.testing.assert_array_equal(dn.to_numpy(a.y), dn.to_numpy(b.y))


def test_leaving_a_streamed_epoch_early_stops_its_prefetch_thread(streamed):
    on_disk, _ = streamed
    with HostBatches(on_disk, dn.get_device(), SingleProcess(None), 5, 1, (0, 0, False), None,
                     np.dtype(np.float32)) as source:
        source.start_epoch(0, 0)
        source.batch(0)
        assert any(t.name == "dualnet-prefetch" for t in threading.enumerate())
    assert source.reader is None


@pytest.mark.parametrize("augment, stream, kind", [((0, 0, False), False, DeviceBatches),
                                                   ((1, 0, False), False, HostBatches),
                                                   ((0, 0, True), False, HostBatches),
                                                   ((0, 0, False), True, HostBatches)])
def test_batch_source_prepares_on_the_host_only_to_augment_or_stream(augment, stream, kind, streamed):
    data = streamed[0] if stream else streamed[1]
    with batch_source(data, tiny_model(), SingleProcess(None), 4, 0, augment) as source:
        assert type(source) is kind


def test_the_data_follows_the_models_dtype_and_normalization():
    data = tiny_data(8)
    model = tiny_model(dtype=np.float64)
    model.normalization = {"mean": [0.5], "std": [0.25]}
    for augment in ((0, 0, False), (0, 1, False)):
        with batch_source(data, model, SingleProcess(None), 8, 0, augment) as source:
            source.start_epoch(0, 0)
            b = source.batch(0)
            assert b.x.dtype == np.float64
            if augment[1] == 0:
                order = dn.data.epoch_order(8, 0, 0)
                np.testing.assert_array_equal(dn.to_numpy(b.x), ((data.images[order] - 0.5) / 0.25).astype(np.float64))
