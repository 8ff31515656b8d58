"""The run's guards: signals recorded instead of raised, NumPy's warnings off, the device scope held,
running out of device memory explained; everything restored on the way out."""

from __future__ import annotations

import contextlib
import signal
import threading

import numpy as np
import pytest

import dualnet.train as train_module
from dualnet.train import DeviceOutOfMemory
from dualnet.train.guards import RunGuards


class ScopedDevice:
    """A device whose scope records when it is entered and left."""

    def __init__(self) -> None:
        self.log: list[str] = []

    @contextlib.contextmanager
    def scope(self):
        self.log.append("enter")
        try:
            yield
        finally:
            self.log.append("exit")


def test_signals_are_recorded_not_raised_and_the_handlers_come_back():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with RunGuards(ScopedDevice(), 64, handle_signals=True) as guards:
        assert guards.raised is None
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)
        assert guards.raised == signal.SIGINT  # the last one caught
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_without_handle_signals_or_off_the_main_thread_no_handler_is_installed():
    before = signal.getsignal(signal.SIGINT)
    seen = []

    def body(handle):
        with RunGuards(ScopedDevice(), 64, handle_signals=handle):
            seen.append(signal.getsignal(signal.SIGINT))

    body(False)
    thread = threading.Thread(target=body, args=(True,))
    thread.start()
    thread.join()
    assert seen == [before, before]


def test_numpy_warnings_are_off_inside_and_restored_after():
    before = np.geterr()
    with RunGuards(ScopedDevice(), 64, handle_signals=False):
        assert np.geterr()["over"] == np.geterr()["invalid"] == np.geterr()["divide"] == "ignore"
        np.float32(1e38) * np.float32(10)  # no RuntimeWarning (pytest turns dualnet's into errors)
    assert np.geterr() == before


def test_the_device_scope_is_held_for_the_run_and_left_on_an_error():
    dev, before = ScopedDevice(), signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyError), RunGuards(dev, 64, handle_signals=True):
        assert dev.log == ["enter"]
        raise KeyError("boom")
    assert dev.log == ["enter", "exit"]
    assert signal.getsignal(signal.SIGINT) is before


def test_running_out_of_device_memory_suggests_half_the_batch(monkeypatch):
    class FakeOutOfMemory(Exception):
        pass

    monkeypatch.setattr(train_module, "OOM_ERRORS", (FakeOutOfMemory,))
    dev = ScopedDevice()
    with pytest.raises(DeviceOutOfMemory, match=r"out of GPU memory at batch size 96 \(training\): try "
                                                r"`batch_size=48`") as info, RunGuards(dev, 96, handle_signals=False):
        raise FakeOutOfMemory("out of memory allocating 1 GiB")
    assert info.value.__cause__ is None and dev.log == ["enter", "exit"]
