"""An optional library that is installed but raises on import (a broken wheel, a NumPy ABI
mismatch) gives one line naming it and the fix, or falls back where a fallback exists: the 8x8
digits come from the bundled copy, with one line saying so (issue 20.4). Each library is
simulated by a package of the same name, first on PYTHONPATH, whose import raises. On the main of
before, scikit-learn's failure was a 41-line traceback and the others tracebacks too."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
GOOD = HERE / "corpus" / "good" / "tiny.h5"
QUICK = ["--epochs", "1", "--limit", "50", "--validation", "10", "--device", "cpu"]


def run_with_broken(package: str, args: list[str], tmp_path: pathlib.Path, executable: str):
    fake = tmp_path / "broken" / package
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(f"raise RuntimeError('simulated broken {package} install')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "broken"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([executable, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)


@pytest.mark.parametrize("package, args, needs", [
    ("tensorboardX", ["train", *QUICK, "--tensorboard", "tb", "--out", "run.h5"], None),
    ("onnx", ["export", str(GOOD), "out.onnx"], None),
    ("matplotlib", ["plot", str(GOOD), "-o", "curves.png"], None),
    ("mpi4py", ["train", "--distributed", *QUICK, "--out", "run.h5"], None),
])
def test_a_library_that_fails_on_import_is_one_line_naming_it_and_the_fix(tmp_path, dualnet_executable, package,
                                                                          args, needs):
    proc = run_with_broken(package, args, tmp_path, dualnet_executable)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("dualnet: error: "), proc.stderr
    assert package in lines[0] and "simulated broken" in lines[0] and "pip install" in lines[0], lines[0]
    assert not any(p.suffix in (".h5", ".onnx", ".png") for p in tmp_path.iterdir())


def test_digits_fall_back_to_the_bundled_copy_when_scikit_learn_fails_on_import(tmp_path, dualnet_executable):
    if shutil.which(dualnet_executable) is None and not pathlib.Path(dualnet_executable).exists():
        pytest.skip("no dualnet executable")
    proc = run_with_broken("sklearn", ["train", "--data", "digits", *QUICK, "--out", "run.h5", "--json"], tmp_path,
                           dualnet_executable)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "scikit-learn" in line]
    assert len(notes) == 1 and "bundled copy" in notes[0] and "simulated broken" in notes[0], proc.stderr
    assert (tmp_path / "run.h5").exists()
