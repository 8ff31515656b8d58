"""The reference ops of training's bookkeeping: optimizer updates, gradient accumulation and the
training loop's device work (batch gathering, the step tally). ReferenceOps inherits them; like the
rest of the reference they are written against `self.xp`."""

from __future__ import annotations

from typing import Any


class TrainingOps:
    """Training-side ops of the reference table (see ops/reference.py for the contract)."""

    xp: Any

    def relu_backward(self, dy: Any, y: Any) -> Any:
        raise NotImplementedError  # pragma: no cover - ReferenceOps defines it

    def linear_backward(self, dy: Any, x: Any, weight: Any, wgrad: Any, bgrad: Any, need_dx: bool = True) -> Any:
        raise NotImplementedError  # pragma: no cover - ReferenceOps defines it

    def linear_relu_backward(self, dy, y, x, weight, wgrad, bgrad, need_dx: bool = True):
        """The backward of relu(linear(x)) (layers/fused.py's LinearReLU): relu_backward(dy, y), y the
        forward's output, then linear_backward; a table may do the ReLU's mask and the bias gradient
        in one pass (the GPU's relu_bias_grad)."""
        return self.linear_backward(self.relu_backward(dy, y), x, weight, wgrad, bgrad, need_dx)

    # --- optimizer updates (in place) ----------------------------------------------------

    def sgd_update(self, param, grad, velocity, lr: float, momentum: float, weight_decay: float, nesterov: bool):
        """PyTorch's SGD: g = grad + wd*p; v = mu*v + g; p -= lr * (g + mu*v if nesterov else v)."""
        g = grad + param * weight_decay if weight_decay else grad
        if momentum:
            velocity *= momentum
            velocity += g
            g = g + velocity * momentum if nesterov else velocity
        param -= g * lr

    def adam_update(self, param, grad, m, v, lr: float, beta1: float, beta2: float, eps: float,
                    weight_decay: float, bias_correction1: float, bias_correction2: float):
        """Adam (L2 weight decay added to the gradient); bias corrections 1 - beta**t."""
        xp = self.xp
        g = grad + param * weight_decay if weight_decay else grad
        m *= beta1
        m += g * (1 - beta1)
        v *= beta2
        v += g * g * (1 - beta2)
        param -= (m / bias_correction1) * lr / (xp.sqrt(v / bias_correction2) + eps)

    def adamw_update(self, param, grad, m, v, lr: float, beta1: float, beta2: float, eps: float, decay: float,
                     bias_correction1: float, bias_correction2: float):
        """AdamW (decoupled weight decay): param *= decay (= 1 - lr * weight_decay), then Adam's
        step with no decay in the gradient."""
        param *= param.dtype.type(decay)
        self.adam_update(param, grad, m, v, lr, beta1, beta2, eps, 0.0, bias_correction1, bias_correction2)

    # --- gradient accumulation (in place) ------------------------------------------------

    def accumulate_grads(self, wgrad, dw, bgrad, db) -> None:
        """wgrad += dw and, unless bgrad is None, bgrad += db: gradients an op returned (batch norm's
        per-channel sums) added in. The products' gradients are added by their ops themselves
        (conv2d_backward, linear_backward take the gradient buffers)."""
        wgrad += dw
        if bgrad is not None:
            bgrad += db

    # --- the training loop's device work -------------------------------------------------

    def gather_batch(self, images, labels, order, start: int, stop: int):
        """Rows order[start:stop] of images (N, ...) and labels (N,) -> (xb, yb)."""
        idx = order[start:stop]
        return images[idx], labels[idx]

    def step_stats(self, tally, loss, logits, labels, grad, chunk: int, cap: int, slot: int, step: int) -> None:
        """One training step's tally, in place on tally (2 * cap + nchunks,) of the loss dtype.

        tally[slot] = loss * n (the batch's loss sum; loss is the batch mean, 0-d);
        tally[cap + slot] = rows of logits (n, k) whose first maximum is the label;
        tally[2 * cap + t] = step where still 0 and grad[t * chunk:(t + 1) * chunk] holds a
        non-finite value (the first bad step of each chunk of the flat gradient).
        """
        xp = self.xp
        n = logits.shape[0]
        tally[slot] = loss * n
        tally[cap + slot] = (logits.argmax(axis=1) == labels).sum()
        flags = tally[2 * cap:]
        padded = xp.zeros(flags.size * chunk, dtype=grad.dtype)
        padded[:grad.size] = grad
        bad = ~xp.isfinite(padded.reshape(flags.size, chunk)).all(axis=1)
        flags[bad & (flags == 0)] = step
