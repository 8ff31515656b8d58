"""One training step: forward, loss, backward, gradient synchronisation, clipping, the divergence
check, the tally, the update; then the run state counts the step."""

from __future__ import annotations

from typing import Any

from ..layers import Sequential
from ..losses import SoftmaxCrossEntropy
from .batches import Batch
from .checks import check_step, clip
from .state import TrainState


class Step:
    """fit's step over `model` and `optimizer` with the learning rate of `plan` (a Schedule) at
    each global step; `strategy` synchronises gradients; `clip_grad_norm` (None or 0: off) caps the
    global gradient norm.

    On the CPU the loss is already on the host, so the loss and gradients are checked every step;
    a GPU step only checks every `check_every` steps and otherwise leaves it to a deferred tally,
    which flags non-finite gradients on the device (read where the loop reports progress).
    """

    def __init__(self, model: Any, optimizer: Any, strategy: Any, plan: Any, clip_grad_norm: float | None,
                 check_every: int) -> None:
        self.model, self.optimizer, self.strategy, self.plan = model, optimizer, strategy, plan
        self.clip_grad_norm, self.check_every = clip_grad_norm, check_every
        self.loss_fn = SoftmaxCrossEntropy(device=model.device)
        # a Sequential needs no gradient of its input (the images): one product saved per step
        self.backward_kwargs = {"need_input_grad": False} if isinstance(model, Sequential) else {}

    def __call__(self, batch: Batch, state: TrainState, tally: Any, epoch: int) -> None:
        """Train on `batch` as step `state.step` of `epoch`; advances `state` by one step."""
        model, optimizer = self.model, self.optimizer
        optimizer.lr = self.plan.rate(state.global_step)
        model.zero_grad()
        logits = model(batch.x)
        loss = self.loss_fn.forward(logits, batch.y, sync=False)
        model.backward(self.loss_fn.backward(batch.weight), **self.backward_kwargs)
        self.strategy.sync_step()
        if self.clip_grad_norm:
            clip(model, self.clip_grad_norm)
        if not tally.deferred and (model.device.kind != "gpu" or (state.step + 1) % self.check_every == 0):
            check_step(model, loss, batch.x, batch.y, state, epoch)
        tally.add(loss, logits, batch.y, int(batch.y.shape[0]), state.global_step + 1)
        optimizer.step()
        state.step += 1
        state.global_step += 1
        state.seen += batch.size
