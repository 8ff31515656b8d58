"""Devices: names, scoping, and true reasons when the GPU is unavailable."""

from __future__ import annotations

import numpy as np
import pytest

import dualnet as dn
from dualnet.backend import _cupy_status, parse_device_name


@pytest.mark.parametrize("name,canonical", [("ref", "ref"), ("cpu", "cpu"), ("GPU", "gpu:0"), ("gpu:2", "gpu:2"),
                                            ("emu", "emu")])
def test_device_names_parse(name, canonical):
    assert parse_device_name(name) == canonical


@pytest.mark.parametrize("bad", ["tpu", "gpu:-1", "cpu:1", "", "gpu:x", 3])
def test_bad_device_names_say_what_is_allowed(bad):
    with pytest.raises(ValueError, match="'gpu"):
        parse_device_name(bad)


def test_devices_lists_ref_cpu_gpu_emu_with_reasons():
    infos = {d.name.split(":")[0]: d for d in dn.devices()}
    assert set(infos) == {"ref", "cpu", "gpu", "emu"}
    assert infos["ref"].available and infos["cpu"].available
    for d in infos.values():
        assert d.available or d.reason


def test_gpu_unavailable_raises_with_the_true_reason():
    ok, reason = _cupy_status(0)
    if ok:
        pytest.skip("a GPU is usable here")
    with pytest.raises(dn.DeviceUnavailableError) as info:
        dn.use_device("gpu")
    message = str(info.value)
    assert reason in message
    assert any(w in message for w in ("CuPy is not installed", "driver", "no CUDA device", "does not exist"))
    assert dn.get_device().name == "cpu"  # nothing fell back or changed


def test_device_context_scopes_and_restores():
    assert dn.get_device().name == "cpu"
    with dn.device("cpu") as d:
        assert d.xp is np
    assert dn.get_device().name == "cpu"


def test_to_device_cpu_roundtrip():
    a = np.arange(6.0)
    assert dn.to_numpy(dn.to_device(a, "cpu")) is a


def test_ref_device_runs_the_reference_op_table():
    from dualnet.backend import get_device_object
    from dualnet.ops.cpu import CpuOps
    from dualnet.ops.reference import ReferenceOps

    ref = dn.use_device("ref")
    assert type(ref.ops) is ReferenceOps and ref.xp is np
    assert type(get_device_object("cpu").ops) is CpuOps
    model = dn.models.lenet5()
    assert model.device.name == "ref"
    assert model(np.zeros((1, 1, 28, 28), np.float32)).shape == (1, 10)


def test_to_device_emu_copies_in_and_out_and_arrays_know_their_device():
    from dualnet.backend import array_device

    host = np.arange(4.0)
    dev = dn.to_device(host, "emu")
    host[0] = 7.0  # a transfer is a copy, as to a GPU
    assert array_device(dev) == "emu" and array_device(host) == "host"
    back = dn.to_numpy(dev)
    assert type(back) is np.ndarray and back.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert dn.to_device(dev, "emu") is dev
    assert type(dn.to_device(dev, "ref")) is np.ndarray


def test_devices_reports_the_probes_reason_for_the_gpu():
    from dualnet.gpu_probe import cached_probe

    gpu = [d for d in dn.devices() if d.name.startswith("gpu")]
    result = cached_probe(0)
    if not result.usable:
        assert len(gpu) == 1 and gpu[0].reason == result.reason
