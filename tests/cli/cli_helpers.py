"""Running the console entry point in-process, shared by the CLI tests."""

from __future__ import annotations

import pytest

from dualnet_cli.main import main


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[object, str, str]:
    """Run `dualnet argv...` as the installed script would: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err
