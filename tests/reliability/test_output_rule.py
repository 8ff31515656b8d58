"""One output rule for every command that writes (issue 20.8), and symbolic links as targets.

- An output the user named that exists is refused unless --overwrite: one line naming the option
  and the path, "add --overwrite to replace it, or choose another path"; the file is kept. On the
  main of before, --out, --log-csv, export's OUT, --plot, --show-input and the pictures' -o replaced
  it silently.
- A default output that exists gets a free name (runs/lenet5-2.h5); --resume goes on writing its
  own checkpoint (and appends to its CSV log) without --overwrite.
- Every command that writes ends with one `wrote: PATH` line per file, on stdout (on stderr with
  --json, so that stdout stays JSON).
- A target that is a symbolic link is refused, naming the file it points to (the main of before
  put a regular file in the link's place and left that file as it was).
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from writers import DERIVED, FILE_WRITERS, QUICK, input_files, run_writer  # noqa: E402

FIX = "add --overwrite to replace it, or choose another path"
# the option each writer's refusal names
OPTION = {"checkpoint": "--out", "best-checkpoint": "--out", "early-stop-copy": "--out", "csv-log": "--log-csv",
          "onnx": "OUT", "evaluate-plot": "--plot", "plot": "--out", "filters": "--out", "featuremaps": "--out",
          "show-input": "--show-input", "data-convert": "OUT"}


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return input_files(tmp_path)


def _target(tmp_path: pathlib.Path, writer: str) -> pathlib.Path:
    suffix = {"onnx": ".onnx", "checkpoint": ".h5", "csv-log": ".csv", "data-convert": ".h5"}.get(writer, ".png")
    return tmp_path / f"named{DERIVED.get(writer, suffix)}"


def _wrote(stream: str) -> list[str]:
    return [line[len("wrote: "):] for line in stream.splitlines() if line.startswith("wrote: ")]


@pytest.mark.parametrize("writer", FILE_WRITERS)
def test_an_existing_output_the_user_named_needs_overwrite(tmp_path, files, capsys, writer):
    target = _target(tmp_path, writer)
    target.write_bytes(b"keep")
    code, out, err = run_writer(writer, target, tmp_path, files, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, f"exit {code}:\n{err}"
    assert OPTION[writer] in lines[0] and str(target) in lines[0] and FIX in lines[0], lines[0]
    assert target.read_bytes() == b"keep" and "wrote" not in out
    code, out, err = run_writer(writer, target, tmp_path, files, capsys, ("--overwrite",))
    assert code == 0, err
    assert target.read_bytes() != b"keep"
    assert str(target) in _wrote(out), out
    assert out.strip().splitlines()[-1].startswith("wrote: "), "the wrote: lines close the output"


@pytest.mark.parametrize("writer", FILE_WRITERS)
def test_a_symbolic_link_as_the_target_is_refused_naming_the_file_it_points_to(tmp_path, files, capsys, writer):
    real = tmp_path / "elsewhere" / _target(tmp_path, writer).name
    real.parent.mkdir()
    real.write_bytes(b"keep")
    link = _target(tmp_path, writer)
    link.symlink_to(real)
    code, out, err = run_writer(writer, link, tmp_path, files, capsys, ("--overwrite",))
    lines = err.strip().splitlines()
    assert code in (1, 2) and len(lines) == 1 and "Traceback" not in err, f"exit {code}:\n{err}"
    assert str(link) in lines[0] and "symbolic link" in lines[0] and f"points to ({real})" in lines[0], lines[0]
    assert link.is_symlink() and real.read_bytes() == b"keep" and "wrote" not in out


def test_a_dangling_symbolic_link_is_refused_too(tmp_path, files, capsys):
    link = tmp_path / "named.h5"
    link.symlink_to(tmp_path / "nowhere.h5")
    code, out, err = run_writer("checkpoint", link, tmp_path, files, capsys)
    assert code == 1 and "symbolic link" in err and "does not exist" in err, err
    assert link.is_symlink() and not (tmp_path / "nowhere.h5").exists()


def test_the_library_refuses_a_symbolic_link_as_a_checkpoint(tmp_path):
    import dualnet as dn

    real = tmp_path / "real.h5"
    real.write_bytes(b"keep")
    (tmp_path / "link.h5").symlink_to(real)
    with pytest.raises(dn.CheckpointError, match="symbolic link"):
        dn.save(dn.models.digits_cnn(), tmp_path / "link.h5")
    assert real.read_bytes() == b"keep"


def test_a_default_output_that_exists_gets_a_free_name_as_in_the_readme(tmp_path, files, capsys):
    # the README's second command (`dualnet train --epochs 1 --limit 2000` after `dualnet train`), small
    from dualnet_cli.main import main

    for n, expected in ((40, "runs/lenet5.h5"), (50, "runs/lenet5-2.h5")):
        with pytest.raises(SystemExit) as info:
            main(["train", "--epochs", "1", "--limit", str(n), "--device", "cpu"])
        out = capsys.readouterr().out
        assert info.value.code == 0
        assert _wrote(out)[:2] == [expected, expected.replace(".h5", ".best.h5")], out


def test_resume_goes_on_writing_its_own_checkpoint_and_log_without_overwrite(tmp_path, files, capsys):
    from dualnet_cli.main import main

    run, log = tmp_path / "run.h5", tmp_path / "log.csv"
    for argv in (["--out", str(run), "--log-csv", str(log)], ["--resume", str(run), "--epochs", "2",
                                                               "--log-csv", str(log)]):
        with pytest.raises(SystemExit) as info:
            main(["train", *QUICK[2:], "--epochs", "1", "--data", str(files["data"]), *argv])
        out, err = capsys.readouterr()
        assert info.value.code == 0, err
        assert _wrote(out) == [str(run), str(run.with_name("run.best.h5")), str(log)], out
    assert len(log.read_text().splitlines()) == 3  # the header and two epochs


@pytest.mark.parametrize("command", ["train", "export", "evaluate", "predict"])
def test_with_json_stdout_stays_json_and_the_wrote_lines_go_to_stderr(tmp_path, files, capsys, command):
    writer = {"train": "checkpoint", "export": "onnx", "evaluate": "evaluate-plot", "predict": "show-input"}[command]
    target = _target(tmp_path, writer)
    code, out, err = run_writer(writer, target, tmp_path, files, capsys, ("--json",))
    assert code == 0, err
    for line in out.strip().splitlines():
        json.loads(line)
    assert str(target) in _wrote(err) and not _wrote(out)


def test_a_tensorboard_folder_that_exists_takes_a_new_event_file(tmp_path, files, capsys):
    pytest.importorskip("tensorboardX")
    folder = tmp_path / "tb"
    folder.mkdir()
    (folder / "events.out.tfevents.earlier").write_bytes(b"keep")
    code, out, err = run_writer("tensorboard", folder, tmp_path, files, capsys)
    assert code == 0, err
    assert (folder / "events.out.tfevents.earlier").read_bytes() == b"keep"
    assert any(pathlib.Path(p).parent == folder for p in _wrote(out)), out
    assert len(os.listdir(folder)) == 2
