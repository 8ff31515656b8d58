"""Errors raised by the kernel layer (launchers, emulator, NVRTC check)."""

from dualnet.errors import DeviceUnavailableError, DualnetError


class KernelError(DualnetError):
    """Base class of every kernel-layer error."""


class KernelCompileError(KernelError, RuntimeError):
    """A kernel source failed to compile; the message names the file and holds the compiler log."""


class KernelArgumentError(KernelError):
    """Arguments do not match a kernel's declared signature."""


class KernelArgTypeError(KernelArgumentError, TypeError):
    """Wrong argument kind or type: array dtype, scalar width, array module."""


class KernelArgValueError(KernelArgumentError, ValueError):
    """Right type, wrong value: array size, layout, scalar out of the C type's range."""


class KernelLaunchError(KernelError, ValueError):
    """A launch a GPU would refuse: threads per block, grid dimensions (cudaErrorInvalidConfiguration)."""


class KernelCheckError(KernelError, RuntimeError):
    """The checking emulator caught a kernel misbehaving (out-of-bounds or missing writes)."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class EmulatorUnavailableError(KernelError, DeviceUnavailableError):
    """The kernel emulator cannot run here (no C++ compiler); the message says how to fix it."""


class NvrtcUnavailableError(KernelError, RuntimeError):
    """NVRTC cannot be loaded; the message says what was tried."""
