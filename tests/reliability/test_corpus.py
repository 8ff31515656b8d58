"""Every bad input of the corpus (cases.py), through the CLI: the expected exit code, exactly one
line on stderr that names the file at fault and the problem, nothing on stdout, no traceback.

All cases run in-process through the console entry point; a sample also runs through the
installed `dualnet` executable, as a user would meet it.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import subprocess
import sys

import pytest

from dualnet_cli.main import main

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
MAX_BYTES = 100_000


def _load_cases():
    spec = importlib.util.spec_from_file_location("dualnet_reliability_cases", HERE / "cases.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


cases = _load_cases()
CASES = {case.id: case for case in cases.CASES}
# one or more of each kind, through the real executable
SUBPROCESS = ["train-data-idx-wrong-magic", "evaluate-data-h5-huge-unwritten-datasets.h5",
              "evaluate-ckpt-huge-layer-unwritten-parameters", "resume-ckpt-train-config-incomplete",
              "predict-image-zip-bomb.png", "args-lr-nan", "args-out-under-a-regular-file"]


def argv_of(case, tmp_path: pathlib.Path) -> list[str]:
    places = dict(corpus=str(CORPUS), tmp=str(tmp_path), good=str(CORPUS / "good" / "tiny.h5"),
                  digit=str(CORPUS / "good" / "digit.png"))
    return [arg.format(**places) for arg in case.argv]


def check(case, code: int, out: str, err: str) -> None:
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert code == case.code and len(lines) == 1, f"exit {code}, stderr:\n{err}"
    line = lines[0]
    assert line.startswith("dualnet: error: "), line
    assert re.search(case.problem, line), f"{case.problem!r} not in:\n{line}"
    if case.names:
        assert case.names in line, f"{case.names} not named in:\n{line}"
    assert out == "", f"printed before failing:\n{out}"


PICTURES = ("plot", "filters", "featuremaps")  # need matplotlib (the `plot` extra)


@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input_gives_one_line_and_exit_code(case_id, tmp_path, capsys, monkeypatch):
    case = CASES[case_id]
    if case.argv[0] in PICTURES:
        pytest.importorskip("matplotlib")
    if case.argv[0] == "export":
        pytest.importorskip("onnx")
    monkeypatch.chdir(tmp_path)  # a run without --out would write runs/ here
    with pytest.raises(SystemExit) as info:
        main(argv_of(case, tmp_path))
    captured = capsys.readouterr()
    check(case, info.value.code, captured.out, captured.err)


@pytest.mark.parametrize("case_id", SUBPROCESS)
def test_bad_input_through_the_installed_executable(case_id, tmp_path, dualnet_executable):
    case = CASES[case_id]
    proc = subprocess.run([dualnet_executable, *argv_of(case, tmp_path)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    check(case, proc.returncode, proc.stdout, proc.stderr)


def test_the_corpus_is_large_small_and_fully_used():
    assert len(CASES) == len(cases.CASES) >= 40, "case ids must be unique and at least 40"
    files = [p for p in CORPUS.rglob("*") if p.is_file()]
    assert files
    too_big = [f"{p} ({p.stat().st_size} bytes)" for p in files if p.stat().st_size >= MAX_BYTES]
    assert not too_big
    named = {case.names for case in cases.CASES if case.names}
    for name in named:
        assert (CORPUS / name).exists() or name == "images/missing.png", name
    unused = [str(p.relative_to(CORPUS)) for p in files
              if p.parent.name != "good" and not any(str(p.relative_to(CORPUS)).startswith(n) for n in named)]
    assert not unused, f"corpus files no case uses: {unused}"


def test_the_good_files_the_corpus_is_built_on_are_valid(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good, digit = str(CORPUS / "good" / "tiny.h5"), str(CORPUS / "good" / "digit.png")
    commands = [["evaluate", good, "--device", "cpu", "--limit", "10", "--json"],
                ["predict", good, digit, "--json"],
                ["train", "--resume", good, "--epochs", "3", "--device", "cpu", "--out", str(tmp_path / "r.h5"),
                 "--json"],
                # bad only for evaluating (no test split); training on it is fine
                ["train", "--data", str(CORPUS / "data" / "h5-no-test-group.h5"), "--validation", "5", "--epochs",
                 "1", "--device", "cpu", "--out", str(tmp_path / "h.h5"), "--json"]]
    for argv in commands:
        with pytest.raises(SystemExit) as info:
            main(argv)
        captured = capsys.readouterr()
        assert info.value.code == 0, (argv, captured.err)
        # with --json, stderr holds only the closing `wrote:` lines of the commands that write
        assert all(line.startswith("wrote: ") for line in captured.err.splitlines()), captured.err
