"""CuPy's current-device rule, for the CuPy stand-ins (multi_gpu_cupy, counting_cupy).

Each thread has a current device (0 at first). `cuda.Device(n)` makes device n current for a
`with` block and `cuda.Device(n).use()` for the thread; every allocation and kernel launch happens
on the current device (cupy/cuda/device.pyx).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class CurrentDevice:
    """The current device of each thread among `count` devices; `invalid(n, count)` is the
    exception for making a device that does not exist current."""

    def __init__(self, count: int, invalid: Callable[[int, int], Exception]) -> None:
        self.count, self.invalid = count, invalid
        self._local = threading.local()

    @property
    def current(self) -> int:
        return getattr(self._local, "current", 0)

    @current.setter
    def current(self, value: int) -> None:
        if not 0 <= value < self.count:
            raise self.invalid(value, self.count)
        self._local.current = value

    def device_class(self, synchronize: Callable[[], Any] = lambda: None) -> type:
        """`cupy.cuda.Device` over these devices: `Device()` is the current one, `Device(n)` device n."""
        devices = self

        class Device:
            def __init__(self, device: int | None = None) -> None:
                self.id = devices.current if device is None else int(device)
                self._prev: list[int] = []

            def __enter__(self) -> Device:
                self._prev.append(devices.current)
                devices.current = self.id
                return self

            def __exit__(self, *exc: Any) -> None:
                devices.current = self._prev.pop()

            def use(self) -> None:
                devices.current = self.id

            def synchronize(self) -> None:
                synchronize()

            def __eq__(self, other: object) -> bool:
                return isinstance(other, Device) and other.id == self.id

            def __hash__(self) -> int:
                return hash(self.id)

            def __repr__(self) -> str:
                return f"<CUDA Device {self.id}>"

        return Device
