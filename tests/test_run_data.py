"""dualnet.run's data feeding: colour data, normalization stored with the run, augmentation and
streaming that resume bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from test_run import InterruptAt

import dualnet as dn
from dualnet import run
from dualnet.run import RunConfig
from dualnet.train import TrainingInterrupted

TINY = dict(epochs=1, limit=24, batch_size=8, validation=8)
# the colour recipe's own model: its BatchNorm running statistics must survive the checkpoint round trips
COLOUR_MODEL = "resnet8"


def test_colour_run_normalizes_with_the_training_split_and_stores_it(tmp_path, colour_h5):
    assert run.new_run(RunConfig(data=str(colour_h5), **TINY), out=tmp_path / "r.h5").config.model == "resnet8"
    result = dn.train_run(RunConfig(data=str(colour_h5), model=COLOUR_MODEL, **TINY), out=tmp_path / "c.h5",
                          device="cpu")
    train = dn.data.load(colour_h5, "train", validation=8, limit=24)
    stored = run.read_run(result.last)
    assert stored.config.normalize is True
    assert stored.checkpoint.metadata["normalization"] == dn.data.channel_stats(train)
    assert len(stored.checkpoint.metadata["normalization"]["mean"]) == 3
    loaded = dn.load(result.last)
    test = dn.data.load(colour_h5, "test", limit=24)
    assert dn.evaluate(loaded, test)["accuracy"] == result.test_accuracy
    loaded.metadata = {}
    unnormalized = dn.evaluate(loaded, test)["probabilities"]
    assert not np.array_equal(unnormalized, dn.evaluate(result.model, test)["probabilities"])


def assert_same_parameter_bytes(a, b) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert dn.to_numpy(p.data).tobytes() == dn.to_numpy(q.data).tobytes(), name


def test_colour_run_with_crop_and_flip_interrupted_and_resumed_equals_the_uninterrupted_one(tmp_path, colour_h5):
    # 22 steps per epoch (progress reports every 20): the cut lands mid-epoch, between augmented batches
    config = RunConfig(data=str(colour_h5), model=COLOUR_MODEL, epochs=2, limit=44, batch_size=2, validation=8)
    straight = dn.train_run(config, out=tmp_path / "straight.h5", device="cpu")
    assert (straight.model.normalization, run.read_run(straight.last).config.augment_crop) != (None, 0)
    with pytest.raises(TrainingInterrupted, match="SIGINT received at epoch 2, step 20"):
        dn.train_run(config, out=tmp_path / "cut.h5", device="cpu", callbacks=[InterruptAt(2, 20)],
                     handle_signals=True)
    stored = run.read_run(tmp_path / "cut.h5")
    assert (stored.state.epoch, stored.state.step) == (1, 20)
    assert (stored.config.augment_crop, stored.config.augment_flip, stored.config.normalize) == (4, True, True)
    resumed = dn.resume(tmp_path / "cut.h5", device="cpu")
    assert_same_parameter_bytes(straight.model, resumed.model)
    assert [h["train_loss"] for h in straight.history] == [h["train_loss"] for h in resumed.history]
    assert straight.test_accuracy == resumed.test_accuracy


def test_a_streamed_run_trains_bit_for_bit_as_the_in_memory_run(tmp_path, colour_h5):
    for augment in (dict(augment_crop=0, augment_flip=False), {}):  # plain batches, then the colour recipe's
        config = RunConfig(data=str(colour_h5), model=COLOUR_MODEL, epochs=2, limit=40, batch_size=8, validation=8,
                           **augment)
        loaded = dn.train_run(config, out=tmp_path / "loaded.h5", device="cpu")
        streamed = dn.train_run(config.replace(stream=True), out=tmp_path / "streamed.h5", device="cpu")
        assert isinstance(run.new_run(config.replace(stream=True), tmp_path / "x.h5").train_set, dn.data.StreamDataset)
        assert_same_parameter_bytes(loaded.model, streamed.model)
        assert [h["train_loss"] for h in loaded.history] == [h["train_loss"] for h in streamed.history]
        assert [h["val_loss"] for h in loaded.history] == [h["val_loss"] for h in streamed.history]
        assert loaded.test_accuracy == streamed.test_accuracy
