"""`dualnet train --init-from CKPT --freeze PATTERN`: a new run starts from a checkpoint's matching
parameters (another class count: a fresh head) with the named layers frozen."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import dualnet as dn
from dualnet_cli.main import cli


def invoke(*args):
    return CliRunner().invoke(cli, [*args, "--device", "cpu"])


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "digits.h5"
    result = invoke("train", "--data", "digits", "--epochs", "1", "--limit", "200", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_init_from_another_class_count_keeps_the_body_and_freezes_by_glob(base, tmp_path):
    out = tmp_path / "tuned.h5"
    result = invoke("train", "--data", "digits", "--epochs", "1", "--limit", "200", "--num-classes", "12",
                    "--init-from", str(base), "--freeze", "conv*", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"init from {base}:" in result.output and "kept fresh: fc" in result.output
    before, after = dn.load(base), dn.load(out)
    frozen = [n for n, p in after.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith("conv") for n in frozen)
    for name, p in before.named_parameters():
        theirs = dict(after.named_parameters())[name]
        if name in frozen:  # copied, then never updated
            np.testing.assert_array_equal(theirs.data, p.data)
        elif theirs.shape == p.shape:
            assert not np.array_equal(theirs.data, p.data), name  # copied, then trained


def test_finetune_mistakes_are_one_line_refusals(base, tmp_path):
    result = invoke("train", "--data", "digits", "--epochs", "1", "--limit", "64", "--freeze", "nothing*",
                    "--out", str(tmp_path / "a.h5"))
    assert result.exit_code == 2 and "'nothing*' matches no layer with parameters; the model's are: conv1" \
        in result.output
    result = invoke("train", "--resume", str(base), "--freeze", "conv*")
    assert result.exit_code == 2 and "a resumed run keeps the parameters and frozen layers" in result.output
    result = invoke("train", "--epochs", "1", "--limit", "64", "--init-from", str(base), "--out",
                    str(tmp_path / "b.h5"))
    assert result.exit_code == 1 and "no parameter matches this model by name and shape" in result.output
