"""`dualnet export CKPT OUT.onnx`: writes a file onnxruntime runs like dualnet; refusals are one line."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
from cli_helpers import run_main

import dualnet as dn

HAVE_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason='needs the onnx extra: pip install "dualnet[onnx]"')




@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "classic.h5"
    dn.save(dn.models.get("lenet5-classic", seed=4), path)
    return path


@needs_onnx
def test_export_writes_a_file_that_onnxruntime_runs_like_the_checkpoint(ckpt, tmp_path, capsys):
    import onnxruntime as ort

    out = tmp_path / "classic.onnx"
    code, stdout, err = run_main(["export", str(ckpt), str(out)], capsys)
    assert code == 0, err
    assert stdout.strip().splitlines() == ["ONNX graph: N x 1 x 28 x 28 -> N x 10, opset 17, 61,706 parameters",
                                           f"wrote: {out}"]
    x = np.random.default_rng(0).uniform(0, 1, (3, 1, 28, 28)).astype(np.float32)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    model = dn.load(ckpt).eval()
    np.testing.assert_allclose(got, model(x), rtol=1e-4, atol=1e-5)


@needs_onnx
def test_export_verify_json_reports_agreement_and_the_chosen_opset(ckpt, tmp_path, capsys):
    code, stdout, err = run_main(["export", str(ckpt), str(tmp_path / "m.onnx"), "--verify", "--opset", "18",
                                  "--json"], capsys)
    assert code == 0, err
    report = json.loads(stdout)
    assert report["opset"] == 18 and report["argmax_agreement"] == 1.0 and report["max_abs_diff"] < 1e-4
    assert report["input_shape"] == ["N", 1, 28, 28] and report["output_shape"] == ["N", 10]


@needs_onnx
@pytest.mark.parametrize("extra, problem", [
    (["--opset", "9"], "opset must be an int from 13"),
    (["--input-shape", "3,28,28"], "does not accept inputs of shape (3, 28, 28)"),
    (["--input-shape", "1,x"], "Invalid value for '--input-shape'"),
])
def test_export_refuses_bad_options_in_one_line(ckpt, tmp_path, capsys, extra, problem):
    code, stdout, err = run_main(["export", str(ckpt), str(tmp_path / "bad.onnx"), *extra], capsys)
    assert code in (1, 2) and problem in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "bad.onnx").exists()


def test_export_of_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    code, _, err = run_main(["export", str(tmp_path / "none.h5"), str(tmp_path / "m.onnx")], capsys)
    assert code == 1 and err.startswith("dualnet: error: ") and err.count("\n") == 1


def test_export_without_onnx_names_the_install_command(ckpt, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    code, _, err = run_main(["export", str(ckpt), str(tmp_path / "m.onnx")], capsys)
    want = 'dualnet: error: ONNX export needs the onnx package: pip install "dualnet[onnx]"'
    assert code == 1 and err.strip() == want


@needs_onnx
def test_export_folds_the_normalization_a_checkpoint_records(tmp_path, capsys):
    import onnxruntime as ort

    ckpt = tmp_path / "norm.h5"
    model = dn.models.get("mlp", seed=1)
    dn.save(model, ckpt, normalization={"mean": [0.5], "std": [0.25]})
    code, _, err = run_main(["export", str(ckpt), str(tmp_path / "n.onnx"), "--verify"], capsys)
    assert code == 0, err
    raw = np.random.default_rng(2).uniform(0, 1, (4, 1, 28, 28)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "n.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": raw})[0]
    np.testing.assert_allclose(got, model.eval()((raw - 0.5) / 0.25), rtol=1e-4, atol=1e-5)
