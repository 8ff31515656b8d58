"""A stand-in for CuPy with several GPUs, following CuPy's documented device rules, for tests
that have no GPU (or only one).

The rules it follows (CuPy 14.2, cupy/_core/core.pyx, _kernel.pyx, _creation/from_data.py):
- every allocation (a new array, an op's result) happens on the *current* device, which
  `cuda.Device(n)` sets for a `with` block and `Device(n).use()` for the thread;
- an op whose array operands live on another device than the current one raises ValueError
  ("The device where the array resides (1) is different from the current device (0). Peer
  access is unavailable between these devices.") -- the no-peer-access branch;
- views (reshape, transpose, basic slices) stay on their array's device;
- `asarray(a)` of a device array returns `a` itself, whichever device it lives on; `a.copy()`
  copies it to the current device; `asarray(numpy_array)` copies it to the current device;
- host numpy arrays as operands raise TypeError, `np.asarray(a)` raises TypeError;
- `RawModule(...).get_function(name)` kernels launch on the current device; an array argument on
  another device is an illegal address. The kernels of dualnet's table run in the emulator.

`allocations` and `launches` record the current device of every allocation and launch.
"""

from __future__ import annotations

import re
import sys
import types
from typing import Any

import numpy as np

from dualnet.emu_array import IMPLICIT_CONVERSION, define_operators
from dualnet.kernels.emulator import EmulatorLauncher
from dualnet.kernels.signatures import KERNELS

from .cuda_devices import CurrentDevice


class CUDARuntimeError(RuntimeError):
    def __init__(self, status: int, text: str = "") -> None:
        self.status = status
        super().__init__(text or f"cudaError {status}")


class CompileException(Exception):
    pass


class OutOfMemoryError(MemoryError):
    pass


class StandIn:
    """One stand-in `cupy` module with `count` devices (install it with `install`)."""

    def __init__(self, count: int = 2) -> None:
        self.count = count
        self.allocations: list[int] = []
        self.launches: list[tuple[str, int]] = []
        #: kernels outside dualnet's table, by name: Python functions of the host arrays
        self.python_kernels: dict[str, Any] = {}
        self.devices = CurrentDevice(count, lambda n, count: CUDARuntimeError(
            101, f"cudaErrorInvalidDevice: device {n} of {count}"))
        self.module = self._build()

    # --- the current device (CuPy's rule: standins.cuda_devices) ----------------------------

    @property
    def current(self) -> int:
        return self.devices.current

    @current.setter
    def current(self, value: int) -> None:
        self.devices.current = value

    # --- arrays ------------------------------------------------------------------------

    def new(self, a: np.ndarray) -> Any:
        self.allocations.append(self.current)
        return self.ndarray(a, self.current)

    def check_on_current(self, arrays: list[Any]) -> None:
        for arr in arrays:
            if arr._dev != self.current:
                raise ValueError(f"The device where the array resides ({arr._dev}) is different from the current "
                                 f"device ({self.current}). Peer access is unavailable between these devices.")

    def unwrap(self, value: Any, found: list[Any]) -> Any:
        if isinstance(value, self.ndarray):
            found.append(value)
            return value._a
        if type(value) is np.ndarray:
            raise TypeError(f"Unsupported type {type(value)}")
        if isinstance(value, (tuple, list)):
            return type(value)(self.unwrap(v, found) for v in value)
        return value

    def wrap(self, result: Any, operands: list[Any]) -> Any:
        if isinstance(result, tuple):
            return tuple(self.wrap(r, operands) for r in result)
        if isinstance(result, np.generic):
            result = np.asarray(result)
        if not isinstance(result, np.ndarray):
            return result
        for arr in operands:  # a view stays where its array lives
            if np.may_share_memory(result, arr._a):
                return self.ndarray(result, arr._dev)
        self.check_on_current(operands)
        return self.new(result)

    def call(self, fn: Any, args: tuple, kwargs: dict, operands: tuple | list = ()) -> Any:
        """fn (NumPy's) on unwrapped arguments; `operands`: device arrays fn is bound to."""
        found: list[Any] = list(operands)
        a = self.unwrap(args, found)
        kw = {k: self.unwrap(v, found) for k, v in kwargs.items()}
        return self.wrap(fn(*a, **kw), found)

    def _build(self) -> types.ModuleType:
        standin = self

        Device = self.devices.device_class()

        class ndarray:  # noqa: N801 - CuPy's name
            __array_ufunc__ = None
            __array_priority__ = 100

            def __init__(self, a: np.ndarray, dev: int) -> None:
                self._a, self._dev = a, dev

            def __array__(self, *args: Any, **kwargs: Any) -> Any:
                raise TypeError(IMPLICIT_CONVERSION)

            device = property(lambda self: Device(self._dev))
            shape = property(lambda self: self._a.shape)
            dtype = property(lambda self: self._a.dtype)
            size = property(lambda self: self._a.size)
            ndim = property(lambda self: self._a.ndim)
            strides = property(lambda self: self._a.strides)
            nbytes = property(lambda self: self._a.nbytes)
            itemsize = property(lambda self: self._a.itemsize)
            flags = property(lambda self: self._a.flags)
            T = property(lambda self: standin.wrap(self._a.T, [self]))

            @property
            def __cuda_array_interface__(self) -> dict:
                return {"shape": self.shape, "typestr": self.dtype.str, "version": 3,
                        "data": (self._a.__array_interface__["data"][0], False)}

            def get(self, *args: Any, **kwargs: Any) -> np.ndarray:
                return self._a.copy()

            def __deepcopy__(self, memo: dict) -> Any:
                with Device(self._dev):  # CuPy copies on the array's own device
                    return self.copy()

            def copy(self, order: str = "C") -> Any:
                return standin.new(np.array(self._a, order=order, copy=True))

            def item(self) -> Any:
                return self._a.item()

            def tolist(self) -> Any:
                return self._a.tolist()

            def tobytes(self) -> bytes:
                return self._a.tobytes()

            def __float__(self) -> float:
                return float(self._a)

            def __int__(self) -> int:
                return int(self._a)

            def __bool__(self) -> bool:
                return bool(self._a)

            def __len__(self) -> int:
                return len(self._a)

            def __repr__(self) -> str:
                return f"{self._a!r} (stand-in gpu:{self._dev})"

            def __getattr__(self, name: str) -> Any:
                if name.startswith("__") or name == "_a":
                    raise AttributeError(name)
                method = getattr(self._a, name)
                return lambda *args, **kwargs: standin.call(method, args, kwargs, [self])

            def __getitem__(self, key: Any) -> Any:
                found: list[Any] = []
                k = self_unwrap_index(key, found)
                return standin.wrap(self._a[k], [self] + found)

            def __setitem__(self, key: Any, value: Any) -> None:
                found: list[Any] = [self]
                v = standin.unwrap(value, found)
                standin.check_on_current(found)
                self._a[self_unwrap_index(key, [])] = v

        def self_unwrap_index(key: Any, found: list[Any]) -> Any:
            if isinstance(key, ndarray):
                found.append(key)
                return key._a
            if isinstance(key, tuple):
                return tuple(self_unwrap_index(k, found) for k in key)
            return key

        define_operators(ndarray, lambda fn, reflected, name: _operator(standin, fn, reflected),
                         lambda fn, name: _inplace(standin, fn), lambda fn, name: _operator(standin, fn, False))
        ndarray.__hash__ = None  # type: ignore[assignment]
        self.ndarray = ndarray

        class RawModule:
            def __init__(self, code: str = "", options: tuple = (), name_expressions: Any = None) -> None:
                self.device = standin.current

            def get_function(self, name: str) -> Any:
                if name in standin.python_kernels:
                    return _PythonFunction(standin, name)
                return _Function(standin, name)

        class MemoryPool:
            def free_all_blocks(self) -> None:
                pass

            def used_bytes(self) -> int:
                return 0

            def total_bytes(self) -> int:
                return 0

        runtime = types.SimpleNamespace(
            getDeviceCount=lambda: standin.count, getDevice=lambda: standin.current,
            setDevice=lambda i: setattr(standin, "current", i), runtimeGetVersion=lambda: 12090,
            driverGetVersion=lambda: 12090, getDeviceProperties=lambda i: {"name": f"Stand-in GPU {i}".encode()},
            CUDARuntimeError=CUDARuntimeError)
        cuda = types.SimpleNamespace(Device=Device, runtime=runtime,
                                     compiler=types.SimpleNamespace(CompileException=CompileException),
                                     memory=types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError))
        mod = types.ModuleType("cupy")
        mod.__version__ = "14.2.0"
        mod.cuda = cuda
        mod.ndarray = ndarray
        mod.RawModule = RawModule
        pool = MemoryPool()
        mod.get_default_memory_pool = lambda: pool

        def asarray(a: Any, dtype: Any = None) -> Any:
            if isinstance(a, ndarray):  # CuPy: already a device array, whatever its device
                return a if dtype is None or a.dtype == dtype else a.astype(dtype)
            return standin.new(np.array(a, dtype=dtype, copy=True))

        def array(a: Any, dtype: Any = None, copy: bool = True) -> Any:
            if isinstance(a, ndarray):
                return a.copy() if dtype is None else a.astype(dtype)
            return standin.new(np.array(a, dtype=dtype, copy=True))

        mod.asarray, mod.array = asarray, array

        def module_getattr(name: str) -> Any:
            value = getattr(np, name)
            if callable(value) and not isinstance(value, type):
                return lambda *args, **kwargs: standin.call(value, args, kwargs)
            return value
        mod.__getattr__ = module_getattr  # type: ignore[attr-defined]
        return mod


def _operator(standin: StandIn, fn: Any, reflected: bool) -> Any:
    def op(self: Any, *other: Any) -> Any:
        return standin.call(fn, (*other, self) if reflected else (self, *other), {})
    return op


def _inplace(standin: StandIn, fn: Any) -> Any:
    def op(self: Any, other: Any) -> Any:
        found: list[Any] = [self]
        v = standin.unwrap(other, found)
        standin.check_on_current(found)
        fn(self._a, v, out=self._a)
        return self
    return op


_EMULATORS: dict[tuple[int, int], EmulatorLauncher] = {}
_TYPES = {"float": np.float32, "double": np.float64}


class _Function:
    """A kernel of dualnet's table, launched on the current device and run by the emulator."""

    def __init__(self, standin: StandIn, name: str) -> None:
        m = re.fullmatch(r"(\w+)<(\w+)>", name)
        if m is None or m.group(1) not in KERNELS.kernels:
            raise CompileException(f"stand-in: no kernel named {name!r} in dualnet's table")
        self.standin, self.name, self.kernel, self.dtype = standin, name, m.group(1), _TYPES[m.group(2)]

    def __call__(self, grid: tuple, block: tuple, args: tuple) -> None:
        standin = self.standin
        standin.launches.append((self.name, standin.current))
        raw = []
        for a in args:
            if isinstance(a, standin.ndarray):
                if a._dev != standin.current:
                    raise CUDARuntimeError(700, f"cudaErrorIllegalAddress: {self.name} launched on device "
                                                f"{standin.current} with an array of device {a._dev}")
                raw.append(a._a)
            else:
                raw.append(a)
        key = (block[0], grid[0])
        if key not in _EMULATORS:
            _EMULATORS[key] = EmulatorLauncher(block=block[0], max_blocks=grid[0])
        _EMULATORS[key].launch(self.kernel, self.dtype, *raw)


class _PythonFunction:
    def __init__(self, standin: StandIn, name: str) -> None:
        self.standin, self.name = standin, name

    def __call__(self, grid: tuple, block: tuple, args: tuple) -> None:
        self.standin.launches.append((self.name, self.standin.current))
        self.standin.python_kernels[self.name](*[a._a if isinstance(a, self.standin.ndarray) else a
                                                 for a in args])


def install(monkeypatch: Any, count: int = 2) -> StandIn:
    """Make `import cupy` give a stand-in with `count` GPUs that dualnet's probe accepts."""
    import dualnet.backend as backend
    import dualnet.gpu_probe as gpu_probe
    import dualnet.kernels.launch as launch

    standin = StandIn(count)
    monkeypatch.setitem(sys.modules, "cupy", standin.module)
    monkeypatch.setattr(launch, "_MODULES", {})
    monkeypatch.setattr(gpu_probe, "cached_probe", lambda index: gpu_probe.ProbeResult(index < count, count))
    backend._make_device.cache_clear()
    monkeypatch.setattr(backend, "_global", [])
    return standin
