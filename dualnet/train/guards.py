"""What holds around a whole training run, as one context manager (`RunGuards`):

- SIGINT and SIGTERM are caught (when asked, on the main thread) and only recorded: the loop
  decides, with the strategy, where to stop so that the state it leaves resumes exactly;
- NumPy's floating-point warnings are off: divergence is detected and explained by the checks,
  an overflow warning would only be noise;
- the model's device is the current one (on "gpu:N" every array of the loop is allocated on N);
- the device running out of memory becomes DeviceOutOfMemory, suggesting half the batch size.

Everything is restored on the way out, whatever ends the run.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from .state import DeviceOutOfMemory


def oom_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean "the device ran out of memory": dualnet.train.OOM_ERRORS (tests
    register stand-ins there) and CuPy's OutOfMemoryError, recognised without importing CuPy (only a
    loaded CuPy can raise it)."""
    from . import OOM_ERRORS  # read at each call: the package's attribute is the registry

    cupy = sys.modules.get("cupy")
    oom = getattr(getattr(getattr(cupy, "cuda", None), "memory", None), "OutOfMemoryError", None)
    return OOM_ERRORS + ((oom,) if isinstance(oom, type) else ())


@contextlib.contextmanager
def out_of_memory_as(batch_size: int, during: str) -> Iterator[None]:
    """Turn the device running out of memory inside the block into DeviceOutOfMemory."""
    try:
        yield
    except oom_errors():
        raise DeviceOutOfMemory(batch_size, during) from None


class RunGuards:
    """The guards of one training run (see the module docstring); `raised` is the last signal
    caught (its number), or None."""

    def __init__(self, device: Any, batch_size: int, handle_signals: bool) -> None:
        self.device, self.batch_size = device, batch_size
        self.handle_signals = handle_signals and threading.current_thread() is threading.main_thread()
        self.raised: int | None = None
        self._stack = contextlib.ExitStack()

    def _record(self, signum: int, frame: Any) -> None:
        self.raised = signum

    def __enter__(self) -> RunGuards:
        with contextlib.ExitStack() as stack:
            if self.handle_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    stack.callback(signal.signal, sig, signal.signal(sig, self._record))
            stack.enter_context(np.errstate(over="ignore", invalid="ignore", divide="ignore"))
            stack.enter_context(self.device.scope())
            stack.enter_context(out_of_memory_as(self.batch_size, "training"))
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return self._stack.__exit__(*exc)
