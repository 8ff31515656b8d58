"""Optional libraries (scikit-learn, tensorboardX, onnx, onnxruntime, matplotlib, mpi4py): imported
on first use, and a library that is missing, or installed but failing on import (a broken wheel,
a mismatched NumPy ABI, a missing shared library), is one line naming it and the fix, never a
traceback from inside the library.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import DualnetError

__all__ = ["OptionalLibraryError", "load", "broken"]


class OptionalLibraryError(DualnetError, ImportError):
    """An optional library is missing or fails on import; the message names it and the fix."""


def broken(package: str, exc: BaseException, fix: str) -> str:
    """The one line for `package` that raised `exc` on import: what failed, and `fix`."""
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())
    if len(detail) > 200:
        detail = detail[:197] + "..."
    return f"{package} is installed but fails on import ({detail}); reinstall it: {fix}"


def load(module: str, missing: str, fix: str, error: type[Exception] = OptionalLibraryError) -> Any:
    """Import `module`; raise `error(missing)` when it is not installed, and `error(<one line naming
    it and the fix>)` when importing it raises anything else (a library broken on import)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == module.split(".")[0]:
            raise error(missing) from None
        raise error(broken(module.split(".")[0], exc, fix)) from None
    except Exception as exc:  # the library's own code failed while importing
        raise error(broken(module.split(".")[0], exc, fix)) from None
