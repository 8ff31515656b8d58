"""Families 7-9: labels validated by the loss, valid inputs accepted (the data follows the model's
dtype, Dropout's p of any real type, empty batches), saved files that load, messages that say
what is wrong."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pytest

import dualnet as dn
from dualnet.errors import CheckpointError
from dualnet.losses import SoftmaxCrossEntropy

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"
DIGIT = CORPUS / "good" / "digit.png"


@pytest.mark.parametrize("label, match", [(-1, r"label -1 at position 2 is outside \[0, 10\)"),
                                          (10, r"label 10 at position 2 is outside \[0, 10\)")])
@pytest.mark.parametrize("device", ["cpu", "ref", "emu"])
def test_the_loss_refuses_labels_that_name_no_class(label, match, device):
    with dn.device(device):
        logits = dn.to_device(np.zeros((3, 10), np.float32), device)
        labels = dn.to_device(np.array([0, 9, label], np.int32), device)
        with pytest.raises(ValueError, match=match):
            SoftmaxCrossEntropy()(logits, labels)


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_the_data_follows_the_models_dtype_in_fit_evaluate_and_predict(dtype, tmp_path):
    model = dn.models.lenet5()
    model.astype(dtype)
    train = dn.data.load_mnist("train", limit=64)
    history = dn.fit(model, train, epochs=1, batch_size=32)
    assert np.isfinite(history[0]["train_loss"]) and next(iter(model.parameters())).data.dtype == dtype
    result = dn.evaluate(model, dn.data.load_mnist("test", limit=32))
    assert result["n"] == 32
    path = dn.save(model, tmp_path / "m.h5")
    for args in (["evaluate", str(path), "--device", "cpu", "--limit", "20"], ["predict", str(path), str(DIGIT)]):
        proc = subprocess.run([sys.executable, "-c", "from dualnet_cli.main import main; main()", *args],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", ["tiny-float64.h5", "tiny-float16.h5"])
def test_float64_and_float16_checkpoints_of_the_corpus_evaluate_and_predict(name):
    for args in (["evaluate", str(CORPUS / "good" / name), "--device", "cpu", "--limit", "20"],
                 ["predict", str(CORPUS / "good" / name), str(DIGIT)]):
        proc = subprocess.run([sys.executable, "-c", "from dualnet_cli.main import main; main()", *args],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("p", [np.float32(0.5), np.float64(0.25), np.int64(0), 0.5])
def test_dropout_takes_p_of_any_real_type(p):
    assert dn.layers.Dropout(p).p == float(p)


@pytest.mark.parametrize("p", [True, 1.0, -0.1, "0.5", np.float32(1.5)])
def test_dropout_refuses_p_outside_the_unit_interval(p):
    with pytest.raises(ValueError, match="Dropout: p must be in"):
        dn.layers.Dropout(p)


def test_flatten_takes_an_empty_batch():
    flat = dn.layers.Flatten()
    y = flat(np.zeros((0, 3, 4, 5), np.float32))
    assert y.shape == (0, 60)
    assert flat.backward(np.zeros((0, 60), np.float32)).shape == (0, 3, 4, 5)


def test_a_model_with_duplicate_layer_names_is_not_saved(tmp_path):
    a, b = dn.layers.Linear(784, 10, seed=0), dn.layers.Linear(10, 10, seed=1)
    b.name = a.name = "fc"
    # refused where the model is built (so it can never reach a file) ...
    with pytest.raises(ValueError, match="layer names must be unique, fc appear more than once"):
        dn.Sequential(dn.layers.Flatten(), a, b, input_shape=(1, 28, 28))
    # ... and by save, for a model renamed after it was built
    model = dn.Sequential(dn.layers.Flatten(), a, dn.layers.Linear(10, 10, seed=1), input_shape=(1, 28, 28))
    model.layers[2].name = "fc"
    with pytest.raises(CheckpointError, match="duplicated|occur twice|named 'fc'"):
        dn.save(model, tmp_path / "dup.h5")
    assert not (tmp_path / "dup.h5").exists()


def test_save_verifies_the_file_loads_back(tmp_path, monkeypatch):
    from dualnet.checkpoint import writer

    real = writer._write

    def damaging(f, data):  # a writer bug: the parameters are written under another name
        real(f, data)
        f.move("model/parameters/fc1.weight", "model/parameters/fc9.weight")

    monkeypatch.setattr(writer, "_write", damaging)
    model = dn.Sequential(dn.layers.Flatten(), dn.layers.Linear(784, 10, seed=0), input_shape=(1, 28, 28))
    with pytest.raises(CheckpointError, match=r"the file would not load back \(.*fc9\.weight"):
        dn.save(model, tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists() and not list(tmp_path.iterdir())


def test_an_empty_training_split_is_refused_before_the_summary(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "from dualnet_cli.main import main; main()", "train", "--data",
                           str(CORPUS / "data" / "h5-five-images.h5"), "--validation", "5", "--device", "cpu",
                           "--out", str(tmp_path / "r.h5")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert "the training split is empty" in proc.stderr


def test_out_of_memory_hints_name_only_options_the_command_has():
    from dualnet_cli.main import _memory_hint

    assert "--batch-size" in _memory_hint(["train", "--epochs", "1"])
    assert "--batch-size" not in _memory_hint(["predict", "x.h5", "a.png"])
    assert "--limit" not in _memory_hint(["predict", "x.h5", "a.png"])
