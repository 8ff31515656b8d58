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


def whole_number(value: object, minimum: int = 1, maximum: int | None = None) -> int | None:
    """`value` as an int if it is an integer (Python's or NumPy's; a bool is not) in [minimum, maximum]
    (maximum None: no bound), else None. Every count, size and index dualnet takes is checked here;
    the callers word their errors (their messages are part of the interface)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        return None
    number = int(value)
    return number if number >= minimum and (maximum is None or number <= maximum) else None


def positive_int(value: object, what: str, where: str, noun: str = "integer") -> int:
    """`value` as an int if it is an integer >= 1, else ValueError "{where}: {what} must be a positive
    {noun}, got {value!r}" (`where`: the function, layer or model; `what`: the argument)."""
    number = whole_number(value)
    if number is None:
        raise ValueError(f"{where}: {what} must be a positive {noun}, got {value!r}")
    return number
