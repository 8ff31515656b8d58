"""Exceptions a dualnet user can meet.

Every error a user can cause by a mistake of theirs derives from DualnetError, in four families:
UsageError (a bad argument or option), DataError (bad data), CheckpointError (a checkpoint that
cannot be read or written) and DeviceError (a device that cannot be used, or arrays on two). The
CLI turns exactly those into a one-line message, while anything else is a bug and keeps its
traceback. Each also derives from the built-in exception it replaced (ValueError, RuntimeError,
...), so code that catches those keeps working.

Messages name the library's own parameters in backquotes (`epochs`, `device="cpu"`), so that the
CLI can say its flags instead (`--epochs`, `--device cpu`); see dualnet_cli.common.as_flags.
"""

__all__ = ["DualnetError", "UsageError", "DeviceError", "DeviceUnavailableError", "DeviceMismatchError",
           "DataError", "CheckpointError", "GradcheckError"]


class DualnetError(Exception):
    """Base class of every user-facing dualnet error."""


class UsageError(DualnetError, ValueError):
    """An argument out of its range or of the wrong kind: the message names the parameter, what it
    takes and what it got."""


class DeviceError(DualnetError):
    """A device cannot be used as asked."""


class DeviceUnavailableError(DeviceError, RuntimeError):
    """A device was asked for that cannot be used here; the message says why and how to fix it."""


class DeviceMismatchError(DeviceError, ValueError):
    """Arrays on two different devices met in one call."""


class DataError(DualnetError, ValueError):
    """A data file or array is malformed; the message names the file and the problem."""


class CheckpointError(DualnetError, ValueError):
    """A checkpoint cannot be written or read; the message names the file and the problem."""


class GradcheckError(DualnetError, AssertionError):
    """An analytic gradient disagrees with its numerical estimate."""
