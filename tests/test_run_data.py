"""dualnet.run's data feeding: colour data, normalization stored with the run, augmentation and
streaming that resume bit for bit."""

from __future__ import annotations

import numpy as np

import dualnet as dn
from dualnet import run
from dualnet.run import RunConfig

TINY = dict(epochs=1, limit=24, batch_size=8, validation=8)


def test_colour_run_normalizes_with_the_training_split_and_stores_it(tmp_path, colour_h5):
    result = dn.train_run(RunConfig(data=str(colour_h5), **TINY), out=tmp_path / "c.h5", device="cpu")
    train = dn.data.load(colour_h5, "train", validation=8, limit=24)
    stored = run.read_run(result.last)
    assert stored.config.model == "resnet8" and stored.config.normalize is True
    assert stored.checkpoint.metadata["normalization"] == dn.data.channel_stats(train)
    assert len(stored.checkpoint.metadata["normalization"]["mean"]) == 3
    loaded = dn.load(result.last)
    test = dn.data.load(colour_h5, "test", limit=24)
    assert dn.evaluate(loaded, test)["accuracy"] == result.test_accuracy
    loaded.metadata = {}
    unnormalized = dn.evaluate(loaded, test)["probabilities"]
    assert not np.array_equal(unnormalized, dn.evaluate(result.model, test)["probabilities"])
