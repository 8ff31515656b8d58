"""Fixtures of the data tests: a private user cache (no test writes to the real ~/.cache)."""

from __future__ import annotations

import pytest


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """XDG_CACHE_HOME pointed at a fresh folder; returns dualnet's cache root inside it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "dualnet"
