"""Every layer test runs on both host tables: "ref" (the reference ops) and "cpu" (the fast ones)."""

from __future__ import annotations

import pytest

import dualnet as dn


@pytest.fixture(autouse=True, params=["ref", "cpu"])
def host_device(request: pytest.FixtureRequest):
    dn.use_device(request.param)
    yield request.param
    dn.use_device("cpu")
