"""Whether forward passes keep what backward needs: `no_grad()` turns it off for inference.

A layer's forward keeps its backward's inputs (cols, masks, its input) in training *and* in eval
mode, so a trained model can be differentiated with frozen statistics (fine-tuning with frozen
batch norm, input gradients for saliency or adversarial examples). Pure inference (evaluate,
predict, export checks) runs under `no_grad()`: nothing is kept, and a Sequential may run a large
batch in cache-sized chunks. The switch is per thread, like PyTorch's `torch.no_grad()`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

_STATE = threading.local()


def grad_enabled() -> bool:
    """True unless inside `no_grad()`: forward passes keep what backward needs."""
    return getattr(_STATE, "enabled", True)


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Within the block, forward passes keep nothing for backward (inference: less memory, and
    the eval-mode fast paths); a backward after such a forward raises, naming the layer."""
    before = grad_enabled()
    _STATE.enabled = False
    try:
        yield
    finally:
        _STATE.enabled = before
