"""Exceptions a dualnet user can meet.

Every error a user can cause by a mistake of theirs derives from DualnetError, so the CLI can
turn exactly those into a one-line message while real bugs keep their traceback.
"""


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
