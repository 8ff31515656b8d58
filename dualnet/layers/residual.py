"""Residual: y = body(x) + shortcut(x), the building block of ResNets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import UsageError
from .base import Layer, layer_entry


class Residual(Layer):
    """y = body(x) + shortcut(x); the shortcut is the identity when None.

    body, shortcut: any layers (usually Sequentials) mapping x to outputs of one shape; a
    downsampling block uses a strided 1x1 Conv2d + BatchNorm2d shortcut. Backward sends dy down
    both paths and returns the sum of their input gradients.
    """

    kind = "res"

    def __init__(self, body: Layer, shortcut: Layer | None = None):
        super().__init__()
        for what, layer in (("body", body), ("shortcut", shortcut)):
            if layer is not None and not isinstance(layer, Layer):
                raise UsageError(f"Residual: {what} is {type(layer).__name__}, not a dualnet layer")
        self.body = body
        self.shortcut = shortcut
        self.device = body.device

    def config(self) -> dict[str, Any]:
        return {"body": layer_entry(self.body),
                "shortcut": layer_entry(self.shortcut) if self.shortcut is not None else None}

    @classmethod
    def from_config(cls, config: dict[str, Any], build: Callable[[dict[str, Any]], Layer]) -> Residual:
        if "body" not in config:
            raise UsageError("Residual config: missing 'body' (a layer entry)")
        shortcut = config.get("shortcut")
        return cls(build(config["body"]), build(shortcut) if shortcut is not None else None)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        out = self.body.output_shape(shape)
        side = self.shortcut.output_shape(shape) if self.shortcut is not None else tuple(shape)
        if tuple(out) != tuple(side):
            raise UsageError(f"{self.name}: the body maps {tuple(shape)} to {tuple(out)} but the shortcut to "
                             f"{tuple(side)}; both paths must give one shape (give a shortcut that "
                             "matches the body's stride and channels, e.g. a strided 1x1 Conv2d + BatchNorm2d)")
        return tuple(out)

    def forward(self, x: Any) -> Any:
        y = self.body(x)
        side = self.shortcut(x) if self.shortcut is not None else x
        if y.shape != side.shape:
            raise UsageError(f"{self.name}: the body gave shape {tuple(y.shape)} but the shortcut "
                             f"{tuple(side.shape)} for input {tuple(x.shape)}; both paths must give one shape")
        self._cache = True if self._records() else None
        return y + side

    def backward(self, dy: Any, need_input_grad: bool = True) -> Any:
        """dy: dL/dy -> dL/dx = body's input gradient + shortcut's (dy itself for the identity); the
        shortcut runs first and the body adds its gradient in (backward_both)."""
        self._need_cache()
        return backward_both(self.body, dy, self.shortcut, dy, need_input_grad)


def backward_both(body: Layer, dy_body: Any, shortcut: Layer | None, dy_shortcut: Any, need_input_grad: bool) -> Any:
    """The input gradient of two paths from one input: body's for dy_body plus shortcut's for
    dy_shortcut (dy_shortcut itself for an identity shortcut, None). The shortcut's runs first and
    the body's backward_add sums it into its own (a convolution's kernel writes the sum, no pass of
    its own); need_input_grad False: parameter gradients only, None returned."""
    if not need_input_grad:
        body.backward(dy_body, False)
        if shortcut is not None:
            shortcut.backward(dy_shortcut, False)
        return None
    ds = shortcut.backward(dy_shortcut) if shortcut is not None else dy_shortcut
    return body.backward_add(dy_body, ds)
