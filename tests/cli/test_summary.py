"""`dualnet summary MODEL --input-shape C,H,W --classes K` and `dualnet summary CHECKPOINT`."""

from __future__ import annotations

import h5py
import pytest
from cli_helpers import run_main

import dualnet as dn


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dualnet: error: ") and "Traceback" not in err, err
    return lines[0]


def test_a_model_built_for_the_given_input_shape_and_classes(capsys):
    rc, out, err = run_main(["summary", "resnet8", "--input-shape", "3,16,16", "--classes", "5"], capsys)
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[2].split() == ["input", "3x16x16"]
    assert lines[-3].split()[-2:] == ["5", f"{64 * 5 + 5:,}"]  # the last Linear: 64 features to 5 classes
    expected = dn.models.get("resnet8", input_shape=(3, 16, 16), num_classes=5).num_parameters()
    assert f"{expected:,} trainable parameters" in out
    assert "buffer values" in out  # BatchNorm's running statistics


def test_a_checkpoint_is_summarised_with_its_stored_shape(tmp_path, capsys):
    model = dn.models.get("lenet5-bn", input_shape=(1, 12, 12), num_classes=4)
    path = dn.save(model, tmp_path / "m.h5", history=[{"epoch": 1, "train_loss": 1.0}])
    rc, out, err = run_main(["summary", str(path)], capsys)
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == f"{path}: lenet5-bn, input 1x12x12, float32, 1 epoch trained (checkpoint format 2)"
    assert lines[3].split() == ["input", "1x12x12"]
    assert f"{model.num_parameters():,} trainable parameters" in out


@pytest.mark.parametrize("shape", ["3,8", "a,b,c", "0,8,8", "3,8,8,8", ""])
def test_a_bad_input_shape_is_a_one_line_usage_error(shape, capsys):
    rc, out, err = run_main(["summary", "lenet5", "--input-shape", shape], capsys)
    line = one_line_error(err)
    assert rc == 2 and out == "" and "'--input-shape'" in line and "C,H,W" in line


def test_a_model_too_small_for_the_input_names_the_layer_its_shape_and_the_models_that_fit(capsys):
    rc, out, err = run_main(["summary", "lenet5", "--input-shape", "3,8,8", "--classes", "5"], capsys)
    line = one_line_error(err)
    assert rc == 1 and out == ""
    assert "lenet5 cannot take inputs of shape (3, 8, 8): layer conv2 (Conv2d) would get 6x4x4" in line
    fit = line.split("models that fit (3, 8, 8): ", 1)[1].split(", ")
    assert "lenet5" not in fit and "mlp" in fit
    for name in fit:  # every model named does take the input
        dn.models.get(name, input_shape=(3, 8, 8), num_classes=5)


@pytest.mark.parametrize("argv,code,problem", [
    (["summary", "{ckpt}", "--input-shape", "1,28,28"], 2, "apply to a MODEL name"),
    (["summary", "{ckpt}", "--classes", "3"], 2, "apply to a MODEL name"),
    (["summary", "lenet5", "--classes", "0"], 2, "'--classes'"),
    (["summary", "no-such-model"], 2, "unknown model 'no-such-model'"),
    (["summary", "{tmp}/missing.h5"], 1, "missing.h5: no such file"),
    (["summary", "{tmp}/text.h5"], 1, "text.h5: not an HDF5 file"),
])
def test_summary_mistakes_are_one_line(argv, code, problem, tmp_path, capsys):
    ckpt = dn.save(dn.Sequential(dn.layers.Linear(2, 2)), tmp_path / "m.h5")
    (tmp_path / "text.h5").write_text("not a checkpoint\n")
    rc, out, err = run_main([a.format(ckpt=ckpt, tmp=tmp_path) for a in argv], capsys)
    assert rc == code and out == "" and problem in one_line_error(err)


def test_a_checkpoint_of_an_unregistered_custom_layer_says_to_register_it(tmp_path, capsys):
    path = dn.save(dn.Sequential(dn.layers.Linear(2, 2), input_shape=(2,)), tmp_path / "m.h5")
    with h5py.File(path, "r+") as f:  # as if saved with a custom layer this process has not registered
        f["model"].attrs["config"] = f["model"].attrs["config"].replace('"Linear"', '"MyLayer"')
    rc, out, err = run_main(["summary", str(path)], capsys)
    line = one_line_error(err)
    assert rc == 1 and "unknown layer type 'MyLayer'" in line and "dualnet.layers.register" in line
