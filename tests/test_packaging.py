"""The installed package holds every module: CI installs dualnet (not editable), so a package
folder missing from pyproject.toml's list would be missing there, and only there."""

from __future__ import annotations

import pathlib

import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    renamed = {v: k for k, v in config["package-dir"].items()}  # cli -> dualnet_cli, data -> dualnet_data
    found = set()
    for top in ("dualnet", *renamed):
        for init in (ROOT / top).glob("**/__init__.py"):
            parts = init.parent.relative_to(ROOT).parts
            found.add(".".join((renamed.get(parts[0], parts[0]), *parts[1:])))
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
