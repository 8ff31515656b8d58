"""The README's quickstart, run verbatim as a new user would (its install line aside), and what it
says the commands print held to what they print."""
from __future__ import annotations

import pathlib
import re
import shlex
import subprocess

import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def quickstart() -> tuple[list[str], list[str]]:
    """(the commands of the quickstart's first bash block, the lines of its `text` block of output)."""
    text = README.read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.search(r"```bash\n(.*?)```", section, re.S)
    printed = re.search(r"```text\n(.*?)```", section, re.S)
    assert commands and printed, "README's quickstart needs a ```bash block of commands and a ```text block"
    return commands.group(1).strip().splitlines(), printed.group(1).strip().splitlines()


def write_digit_picture(path: pathlib.Path) -> None:
    """A test-split 3 of the digits data, dark on light and enlarged to 96x96, as a phone picture would be."""
    from PIL import Image

    import dualnet as dn

    test = dn.data.load("digits", "test")
    image = np.asarray(test.images[int(np.flatnonzero(np.asarray(test.labels) == 3)[0])][0], np.float32)
    page = (255 - image / image.max() * 255).astype(np.uint8)
    Image.fromarray(page).resize((96, 96), Image.NEAREST).save(path)


def as_pattern(line: str) -> re.Pattern[str]:
    """A printed line with its figures (which differ in the last bits between NumPy builds) made wildcards."""
    parts = re.split(r"\d[\d.,e+-]*", line)
    return re.compile(r"[\d.,e+-]+".join(re.escape(part) for part in parts))


def test_readme_quickstart_runs_verbatim_and_prints_what_it_says(tmp_path, dualnet_executable):
    commands, printed = quickstart()
    assert len(printed) <= 8 and len(commands) <= 8, "the quickstart stays short"
    write_digit_picture(tmp_path / "my-digit.png")
    output = []
    for line in commands:
        argv = shlex.split(line, comments=True)
        if argv[:3] == ["python", "-m", "pip"] or argv[:1] == ["pip"]:
            continue  # the test runs in the installed project
        assert argv[0] == "dualnet", f"quickstart line {line!r} is not a dualnet command"
        done = subprocess.run([dualnet_executable, *argv[1:]], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"{line!r} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        output += done.stdout.splitlines() + done.stderr.splitlines()
    for shown in printed:
        pattern = as_pattern(shown)
        assert any(pattern.fullmatch(got.strip()) for got in output), f"README shows {shown!r}; nothing printed it"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["digits-cnn.best.h5", "digits-cnn.h5"]


def test_readme_has_exactly_one_line_starting_with_the_test_command():
    lines = [line for line in README.read_text().splitlines() if line.startswith("pytest")]
    assert lines == ["pytest -q"], "CI runs the README's first line starting with `pytest`"
