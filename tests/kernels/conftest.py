"""Fixtures of the kernel tests: checking emulators, compiled once per session."""

from __future__ import annotations

import pytest

from dualnet.kernels.emulator import EmulatorLauncher, emulator_available


def _need_emulator() -> None:
    ok, why = emulator_available()
    if not ok:
        pytest.skip(f"kernel emulator unavailable: {why}")


@pytest.fixture(scope="session")
def emu() -> EmulatorLauncher:
    """Checking emulator with the default launch configuration (block 256)."""
    _need_emulator()
    launcher = EmulatorLauncher(check=True)
    launcher.compile_all()
    return launcher


@pytest.fixture(scope="session")
def emu_tiny(emu: EmulatorLauncher) -> EmulatorLauncher:
    """Checking emulator with 2 blocks of 32 threads: grid-stride loops wrap many times."""
    return EmulatorLauncher(block=32, max_blocks=2, check=True)


@pytest.fixture(scope="session")
def launchers(emu: EmulatorLauncher, emu_tiny: EmulatorLauncher) -> tuple[EmulatorLauncher, ...]:
    return emu, emu_tiny


@pytest.fixture(scope="session")
def faulty_table():
    """The kernels of faulty.cu: one correct kernel, one with a long long size, and broken ones."""
    from pathlib import Path

    from dualnet.kernels.signatures import Kernel, KernelTable, array_in, array_out, int32, int64, real

    def broken(name: str) -> Kernel:
        return Kernel(name, "faulty.cu", (array_in("x", "size"), array_out("y", "size"),
                                          int32("size")), "size")

    return KernelTable([
        Kernel("scale_ok", "faulty.cu", (array_in("x", "size"), array_out("y", "size"),
                                         int32("size"), real("alpha")), "size"),
        Kernel("fill_long", "faulty.cu", (array_out("y", "size"), int64("size"), real("value")),
               "size"),
        *(broken(n) for n in ("off_by_one", "skip_last", "write_before", "writes_input")),
    ], source_dir=Path(__file__).resolve().parent)
