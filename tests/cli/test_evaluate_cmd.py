"""`dualnet evaluate` and `featuremaps --index` follow the data the checkpoint was trained on."""

from __future__ import annotations

import json

import pytest
from cli_helpers import run_main


@pytest.fixture(scope="module")
def digits_ckpt(tmp_path_factory):
    import dualnet as dn

    out = tmp_path_factory.mktemp("digits") / "digits-cnn.h5"
    dn.train_run(dn.RunConfig(data="digits", epochs=1, limit=64, validation=20, batch_size=32), out=out)
    return out


def test_evaluate_after_a_digits_run_evaluates_digits_without_being_told(digits_ckpt, capsys):
    rc, out, err = run_main(["evaluate", str(digits_ckpt), "--device", "cpu", "--json"], capsys)
    assert rc == 0, err
    assert json.loads(out.splitlines()[-1])["n"] == 360  # the digits test split
    rc, out, err = run_main(["evaluate", str(digits_ckpt), "--device", "cpu", "--split", "val", "--json"], capsys)
    assert rc == 0 and json.loads(out.splitlines()[-1])["n"] == 20  # the run's own validation split


def test_evaluate_on_data_that_does_not_fit_names_data_and_the_checkpoints_data(digits_ckpt, capsys):
    rc, _, err = run_main(["evaluate", str(digits_ckpt), "--data", "mnist", "--limit", "5", "--device", "cpu"],
                          capsys)
    assert rc == 1 and len(err.strip().splitlines()) == 1
    assert "trained on --data digits, not --data mnist" in err


def test_featuremaps_index_uses_the_checkpoints_data(digits_ckpt, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "maps.png"
    rc, stdout, err = run_main(["featuremaps", str(digits_ckpt), "--index", "0", "-o", str(out)], capsys)
    assert rc == 0, err
    assert out.exists()
