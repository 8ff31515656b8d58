"""Run one layer forward and backward in dualnet (on a device) and in PyTorch, float64, for the
PyTorch comparison tests (which skip where torch is not installed, as in CI)."""

from __future__ import annotations

from typing import Any

import numpy as np

import dualnet as dn


def dualnet_run(dev: str, layer: Any, x: np.ndarray, dy: np.ndarray, train: bool = True) -> list[np.ndarray]:
    """[y, dx, *parameter gradients] of `layer` (built on the host in float64) moved to `dev`."""
    with dn.device(dev):
        layer.to(dev)
        layer.train(train)
        layer.zero_grad()
        y = layer(dn.to_device(x, dev))
        dx = layer.backward(dn.to_device(dy, dev))
        out = [dn.to_numpy(y), dn.to_numpy(dx)] + [dn.to_numpy(p.grad) for p in layer.parameters()]
    layer.to("cpu")
    return out


def torch_run(module: Any, x: np.ndarray, dy: np.ndarray) -> list[np.ndarray]:
    """[y, dx, *parameter gradients] of a float64 torch module."""
    import torch

    module.zero_grad()
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = module(tx)
    ty.backward(torch.from_numpy(dy.copy()))
    return [ty.detach().numpy(), tx.grad.numpy()] + [p.grad.numpy() for p in module.parameters()]


def copy_parameters(layer: Any, module: Any) -> None:
    """The dualnet layer's parameters into the torch module's (same order and layout)."""
    import torch

    with torch.no_grad():
        for p, q in zip(layer.parameters(), module.parameters(), strict=True):
            q.copy_(torch.from_numpy(dn.to_numpy(p.data)))


def assert_same(got: list[np.ndarray], want: list[np.ndarray], rtol: float = 1e-9, atol: float = 1e-11) -> None:
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape, f"output {i}: shape {a.shape}, PyTorch {b.shape}"
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"output {i}")
