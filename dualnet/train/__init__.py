"""Training: `dn.fit` (recipe.py: the loop as a recipe over its parts) and `dn.evaluate`.

The dataset moves to the model's device once per fit and batches are sliced there; loss and
accuracy accumulate on the device, so a GPU step does not wait for the host. Every random choice
(batch order, augmentation shifts) is a pure function of (seed, epoch, step): the same seed gives
the same result bit for bit on the CPU, and a run stopped at any step resumes exactly.

The parts, each with its own tests under tests/train/: guards.py (RunGuards), strategy.py
(SingleProcess; DataParallel in dualnet.distributed), batches.py (the batch sources), step.py,
progress.py, epoch_end.py, and what they share: state.py (TrainState and the exceptions),
tally.py (the step tally), checks.py (data and divergence checks).
"""

from __future__ import annotations

from .checks import check_fits
from .evaluation import EVAL_BATCH_SIZE, evaluate
from .recipe import fit
from .state import DeviceOutOfMemory, TrainingDiverged, TrainingInterrupted, TrainState

__all__ = ["fit", "evaluate", "check_fits", "TrainState", "TrainingDiverged", "TrainingInterrupted",
           "DeviceOutOfMemory", "OOM_ERRORS", "EVAL_BATCH_SIZE"]

#: Exception types that mean "the device ran out of memory", besides CuPy's OutOfMemoryError
#: (guards.oom_errors reads this attribute at each call). Tests register stand-ins.
OOM_ERRORS: tuple[type[BaseException], ...] = ()
