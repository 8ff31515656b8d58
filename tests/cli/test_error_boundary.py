"""The CLI's one error boundary: dualnet's own errors are one line (their library parameters said as
flags), anything else is a bug that keeps its traceback and asks for a report, and
DUALNET_TRACEBACK=1 shows the traceback of any error."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_main

import dualnet as dn
from dualnet_cli.common import as_flags


@pytest.fixture
def tiny_ckpt(tmp_path):
    model = dn.models.digits_cnn()
    path = tmp_path / "tiny.h5"
    dn.save(model, path)
    return path


def test_a_planted_bug_keeps_its_traceback_and_asks_for_a_report(tiny_ckpt, monkeypatch, capsys):
    def broken(*args, **kwargs):
        return np.ones(3) + np.ones(4)  # the broadcasting error of a genuine bug

    monkeypatch.setattr(dn, "evaluate", broken)
    rc, _, err = run_main(["evaluate", str(tiny_ckpt), "--data", "digits", "--device", "cpu"], capsys)
    assert rc == 1
    assert "Traceback (most recent call last)" in err and "operands could not be broadcast" in err
    last = err.strip().splitlines()[-1]
    assert "bug in dualnet" in last and "report" in last and "ValueError" in last


def test_a_users_mistake_is_one_line_unless_the_traceback_is_asked_for(tmp_path, monkeypatch, capsys):
    argv = ["evaluate", str(tmp_path / "missing.h5"), "--device", "cpu"]
    rc, _, err = run_main(argv, capsys)
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    monkeypatch.setenv("DUALNET_TRACEBACK", "1")
    rc, _, err = run_main(argv, capsys)
    assert rc == 1 and "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("dualnet: error:") and "missing.h5" in err


def test_every_error_family_is_a_dualnet_error_and_keeps_its_builtin_base():
    assert issubclass(dn.UsageError, dn.DualnetError) and issubclass(dn.UsageError, ValueError)
    assert issubclass(dn.DataError, ValueError) and issubclass(dn.CheckpointError, ValueError)
    assert issubclass(dn.DeviceUnavailableError, dn.DeviceError) and issubclass(dn.DeviceUnavailableError, RuntimeError)
    assert issubclass(dn.DeviceMismatchError, dn.DeviceError) and issubclass(dn.DeviceMismatchError, ValueError)
    # library argument checks raise the usage family, which `except ValueError` still catches
    with pytest.raises(dn.UsageError):
        dn.layers.Conv2d(1, 2, 0)
    with pytest.raises(ValueError, match="RunConfig.epochs"):
        dn.RunConfig(epochs=0)
    with pytest.raises(dn.UsageError):
        dn.use_device("tpu")


def test_library_messages_name_parameters_and_the_cli_says_flags():
    model = dn.models.lenet5(seed=0)
    train = dn.data.load("mnist", "train", limit=640)
    with pytest.raises(dn.DualnetError) as info:
        dn.fit(model, train, None, epochs=1, optimizer=dn.optim.SGD(model.parameters(), lr=1e6))
    message = str(info.value)
    assert "`lr`" in message and "`clip_grad_norm`" in message and "--" not in message
    assert "--lr" in as_flags(message) and "--clip-grad" in as_flags(message)


def test_as_flags_says_parameters_and_values_as_options():
    assert as_flags('pass `epochs` larger than 8') == "pass --epochs larger than 8"
    assert as_flags('use `device="cpu"` or `batch_size=16`') == "use --device cpu or --batch-size 16"
    assert as_flags("run `dualnet devices`") == "run `dualnet devices`"  # a command, not a parameter
