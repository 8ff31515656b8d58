"""Exceptions a dualnet user can meet.

Every error a user can cause by a mistake of theirs derives from DualnetError, so the CLI can
turn exactly those into a one-line message while real bugs keep their traceback.
"""

import numbers


class DualnetError(Exception):
    """Base class of every user-facing dualnet error."""


class DeviceUnavailableError(DualnetError, RuntimeError):
    """A device was asked for that cannot be used here; the message says why and how to fix it."""


class DeviceMismatchError(DualnetError, ValueError):
    """Arrays on two different devices met in one call."""


class DataError(DualnetError, ValueError):
    """A data file or array is malformed; the message names the file and the problem."""


class CheckpointError(DualnetError, ValueError):
    """A checkpoint cannot be written or read; the message names the file and the problem."""


class GradcheckError(DualnetError, AssertionError):
    """An analytic gradient disagrees with its numerical estimate."""


def positive_int(value: object, what: str, where: str) -> int:
    """`value` as an int if it is an integer >= 1 (a bool is not), else ValueError naming `where`
    (the function, layer or model) and `what` (the argument), with the value given."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{where}: {what} must be a positive integer, got {value!r}")
    return int(value)
