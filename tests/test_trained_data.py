"""dualnet.trained_data: a checkpoint's data read back for its model, and a mismatch that says which
data the model was trained on."""

from __future__ import annotations

import pytest

import dualnet as dn
from dualnet.trained_data import load_data_for, trained_on


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "digits-cnn.h5"
    dn.train_run(dn.RunConfig(data="digits", epochs=1, limit=64, validation=20, batch_size=32), out=out)
    return dn.load(out)


def test_trained_on_reads_the_runs_data_split_and_classes(digits_run):
    assert trained_on(digits_run) == {"data": "digits", "validation": 20, "num_classes": 10, "stream": False}


def test_the_recorded_data_and_validation_split_are_the_default(digits_run):
    assert load_data_for(digits_run, "test").images.shape[1:] == (1, 8, 8)
    assert len(load_data_for(digits_run, "val")) == 20


def test_other_data_that_does_not_fit_names_both_datas(digits_run):
    with pytest.raises(dn.DataError) as info:
        load_data_for(digits_run, "test", "mnist", limit=5, model_name="the model in d.h5", data_param="--data")
    message = str(info.value)
    assert "do not fit the model in d.h5" in message
    assert "trained on --data digits, not --data mnist" in message and "\n" not in message


def test_a_model_saved_outside_a_run_defaults_to_mnist(tmp_path):
    model = dn.models.lenet5()
    dn.save(model, tmp_path / "m.h5")
    loaded = dn.load(tmp_path / "m.h5")
    assert trained_on(loaded)["data"] is None
    assert load_data_for(loaded, "test", limit=4).images.shape == (4, 1, 28, 28)
