"""dualnet.outputs, the guarded writer: what it refuses (before opening anything), how it writes
(unpredictable O_EXCL|O_NOFOLLOW temporaries, atomic replacement) and how it reads an earlier output."""

from __future__ import annotations

import os
import pathlib
import stat
import sys

import pytest

from dualnet import outputs
from dualnet.outputs import OutputError, files

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "reliability"))
from writers import make_special  # noqa: E402


def temporaries(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def special(tmp_path: pathlib.Path, kind: str) -> pathlib.Path:
    """A target of `kind` that is not a regular file (tests/reliability/writers.py makes it)."""
    return make_special(tmp_path / f"target-{kind}", kind)


@pytest.mark.parametrize("kind", ["directory", "fifo", "socket", "device"])
@pytest.mark.parametrize("writer", ["writing", "replacing", "write_text", "probe_writable", "publish"])
def test_a_target_that_is_not_a_regular_file_is_refused_and_kept(tmp_path, kind, writer):
    target = special(tmp_path, kind)
    mode = os.lstat(target).st_mode
    done = tmp_path / "done"
    done.write_text("new")
    with pytest.raises(OutputError, match=r"cannot write test output to .*target-\w+: it is (an existing "
                                          r"directory|a FIFO|a socket|a character device)"):
        if writer == "writing":
            with outputs.writing(target, "test output") as f:
                f.write(b"x")
        elif writer == "replacing":
            with outputs.replacing(target, "test output"):
                pass
        elif writer == "write_text":
            outputs.write_text(target, "x", "test output")
        elif writer == "probe_writable":
            outputs.probe_writable(target, "test output")
        else:
            outputs.publish(done, target, "test output")
    assert os.lstat(target).st_mode == mode and temporaries(tmp_path) == []


def test_a_symbolic_link_to_a_fifo_is_refused_by_what_it_points_to(tmp_path):
    fifo = special(tmp_path, "fifo")
    link = tmp_path / "log.csv"
    link.symlink_to(fifo)
    with pytest.raises(OutputError, match="a FIFO"):
        outputs.write_text(link, "x", "CSV log")
    assert link.is_symlink() and stat.S_ISFIFO(os.stat(link).st_mode)


@pytest.mark.parametrize("dangling", [False, True])
def test_a_symbolic_link_as_a_file_target_is_refused_naming_the_file_it_points_to(tmp_path, dangling):
    # from lstat: os.replace would put a regular file in the link's place and leave its file as it was
    real, link = tmp_path / "real.csv", tmp_path / "log.csv"
    if not dangling:
        real.write_text("keep")
    link.symlink_to(real)
    with pytest.raises(OutputError, match=r"it is a symbolic link to .*real\.csv.*name the file it points to") as info:
        outputs.write_text(link, "x", "CSV log")
    assert ("does not exist" in str(info.value)) == dangling
    assert link.is_symlink() and (dangling or real.read_text() == "keep")
    assert not temporaries(tmp_path)


def test_links_among_the_folders_of_a_target_and_a_linked_output_folder_are_followed(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "runs").symlink_to(tmp_path / "real")
    outputs.write_text(tmp_path / "runs" / "log.csv", "x", "CSV log")
    assert (tmp_path / "real" / "log.csv").read_text() == "x"
    assert outputs.output_folder(tmp_path / "runs", "TensorBoard folder") == tmp_path / "runs"


@pytest.mark.parametrize("how", ["same-path", "hard-link", "symbolic-link", "inside-folder", "hard-link-into-folder",
                                 "hard-link-into-a-subfolder", "folder-through-symlink"])
def test_an_input_of_the_command_is_never_written(tmp_path, how):
    data = tmp_path / "data.h5"
    data.write_bytes(b"precious")
    folder = tmp_path / "idx"
    folder.mkdir()
    (folder / "images.gz").write_bytes(b"precious too")
    (folder / "cat").mkdir()  # a class subfolder of a photo folder
    (folder / "cat" / "a.jpg").write_bytes(b"precious photo")
    target = {"same-path": data, "hard-link": tmp_path / "hard.h5", "symbolic-link": tmp_path / "sym.h5",
              "inside-folder": folder / "new.h5", "hard-link-into-folder": tmp_path / "hard2.h5",
              "hard-link-into-a-subfolder": tmp_path / "hard3.h5",
              "folder-through-symlink": tmp_path / "alias" / "new.h5"}[how]
    if how == "hard-link":
        os.link(data, target)
    elif how == "symbolic-link":
        target.symlink_to(data)
    elif how == "hard-link-into-folder":
        os.link(folder / "images.gz", target)
    elif how == "hard-link-into-a-subfolder":
        os.link(folder / "cat" / "a.jpg", target)
    elif how == "folder-through-symlink":
        (tmp_path / "alias").symlink_to(folder)
    with outputs.command():
        outputs.declare_input(data, "input data")
        outputs.declare_input(folder, "input folder idx")
        with pytest.raises(OutputError, match="would replace"):
            outputs.write_bytes(target, b"oops", "checkpoint")
        with pytest.raises(OutputError, match="would replace"):
            outputs.declare_output(target, "checkpoint")
    assert data.read_bytes() == b"precious" and (folder / "images.gz").read_bytes() == b"precious too"
    assert (folder / "cat" / "a.jpg").read_bytes() == b"precious photo"
    assert sorted(p.name for p in folder.iterdir()) == ["cat", "images.gz"]


def test_outside_a_command_nothing_is_an_input(tmp_path):
    data = tmp_path / "data.h5"
    data.write_bytes(b"old")
    with outputs.command():
        outputs.declare_input(data)
    outputs.write_bytes(data, b"new")
    assert data.read_bytes() == b"new"


def test_two_outputs_of_one_command_may_not_share_a_path(tmp_path):
    out = tmp_path / "run.h5"
    with outputs.command():
        outputs.declare_output(out, "checkpoint", "--out")
        outputs.declare_output(out, "checkpoint", "checkpoint")  # the same output again: fine
        with pytest.raises(OutputError, match=r"--log-csv to .*run\.h5: it is also the --out of this command"):
            outputs.declare_output(out, "csv-log", "--log-csv")
        link = tmp_path / "link.h5"
        out.write_bytes(b"x")
        os.link(out, link)
        with pytest.raises(OutputError, match="also the --out"):
            outputs.declare_output(link, "csv-log", "--log-csv")


def test_a_rewritable_input_is_written_only_by_its_role(tmp_path):
    ckpt = tmp_path / "run.h5"
    ckpt.write_bytes(b"epoch 1")
    with outputs.command():
        outputs.declare_input(ckpt, "resumed checkpoint", rewritable_by="checkpoint")
        outputs.declare_output(ckpt, "checkpoint")
        outputs.write_bytes(ckpt, b"epoch 2", "checkpoint")
        with pytest.raises(OutputError, match="would replace"):
            outputs.check_target(ckpt, "CSV log", role="csv-log")
    assert ckpt.read_bytes() == b"epoch 2"


def test_a_planted_temporary_name_is_never_followed(tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    target = tmp_path / "log.csv"
    tokens = iter(["0" * 16, "1" * 16])
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: next(tokens))
    planted = tmp_path / f".log.csv.tmp-{os.getpid()}-{'0' * 16}"
    planted.symlink_to(victim)  # the name the writer would pick first
    outputs.write_text(target, "a,b\n", "CSV log")
    assert victim.read_bytes() == b"keep me" and target.read_text() == "a,b\n" and planted.is_symlink()


def test_the_temporary_name_is_unpredictable(tmp_path):
    names = set()
    for _ in range(3):
        with outputs.replacing(tmp_path / "x.bin", "test") as tmp:
            names.add(tmp.name)
            assert tmp.parent == tmp_path and tmp.exists()
    assert len(names) == 3 and all(len(n.rsplit("-", 1)[1]) == 16 for n in names)


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with outputs.writing(target, "test", durable=True) as f:
            f.write(b"half")
            raise RuntimeError("crash")
    assert target.read_bytes() == b"old" and temporaries(tmp_path) == []


def test_check_runs_on_the_complete_temporary_before_the_rename(tmp_path):
    target = tmp_path / "x.bin"
    seen = []

    def check(tmp: pathlib.Path) -> None:
        seen.append(tmp.read_bytes())
        raise ValueError("does not load back")

    with pytest.raises(ValueError):
        with outputs.writing(target, "test", check=check) as f:
            f.write(b"content")
    assert seen == [b"content"] and not target.exists() and temporaries(tmp_path) == []


def test_an_output_folder_refuses_a_file_and_an_input_folder(tmp_path):
    afile = tmp_path / "f"
    afile.write_text("x")
    with pytest.raises(OutputError, match="it is a regular file, not a directory"):
        outputs.output_folder(afile, "TensorBoard folder")
    with outputs.command():
        outputs.declare_input(tmp_path, "input folder")
        with pytest.raises(OutputError, match="inside the input folder"):
            outputs.output_folder(tmp_path / "tb", "TensorBoard folder")
    assert not (tmp_path / "tb").exists()


@pytest.mark.parametrize("kind", ["fifo", "directory", "large"])
def test_reading_an_earlier_output_checks_its_type_and_bounds_its_size(tmp_path, kind):
    path = tmp_path / "big.csv" if kind == "large" else special(tmp_path, kind)
    if kind == "large":
        path.write_bytes(b"x" * 2000)
    with pytest.raises(OutputError, match=r"cannot read the CSV log .*(FIFO|directory|2,000 bytes)"):
        outputs.readable_output(path, "the CSV log", max_bytes=1000)


def test_reading_a_missing_earlier_output_gives_none(tmp_path):
    assert outputs.readable_output(tmp_path / "none.csv", "the CSV log", 10) is None


def test_a_resumable_partial_file_never_follows_a_planted_link(tmp_path):
    """A partial download sits at a fixed name between attempts: a symbolic link planted there must
    not make dualnet write through it (the file it points to stays untouched)."""
    from dualnet import outputs

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    part = tmp_path / ".data.gz.partial"
    part.symlink_to(victim)
    with pytest.raises(outputs.OutputError):
        with outputs.resumable(part) as f:
            f.write(b"overwritten")
    assert victim.read_text() == "precious"
    part.unlink()
    with outputs.resumable(part) as f:
        f.write(b"abc")
    with outputs.resumable(part) as f:
        assert f.read() == b"abc"


def test_an_input_replaced_by_the_run_no_longer_lends_its_old_inode_number(tmp_path):
    """The resumed checkpoint is replaced each epoch; the file system may give its freed inode number
    to the next new file (the best checkpoint). That file must not be taken for the input (seen as a
    rare failure of the distributed SIGTERM-and-resume test). Here the reuse is made certain by
    renaming the input's old file to the best checkpoint's path."""
    ckpt, best = tmp_path / "run.h5", tmp_path / "run.best.h5"
    ckpt.write_bytes(b"epoch 1")
    with outputs.command():
        outputs.declare_input(ckpt, "resumed checkpoint", rewritable_by="checkpoint")
        outputs.declare_output(ckpt, "checkpoint", "checkpoint")
        outputs.declare_output(best, "best-checkpoint", "best checkpoint")
        os.rename(ckpt, best)  # best now holds the input's old inode; run.h5 is written anew
        outputs.write_bytes(ckpt, b"epoch 2")
        outputs.write_bytes(best, b"best of epoch 2")
        assert best.read_bytes() == b"best of epoch 2"
