"""The guarantees page (docs/reliability.md, "What is guaranteed", linked from the README) covers
every input and every output dualnet has, and each of its promises names the tests that hold it."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "reliability.md"

# every kind of file dualnet reads, and every kind it writes, as the page names them
INPUTS = ["checkpoint (HDF5)", "HDF5 file", "IDX files", "folder of photos", "named dataset", "downloaded",
          "image or `.npy` file", "CSV log a resumed run appends to"]
OUTPUTS = ["Checkpoints (last, best, early-stop copy)", "ONNX files", "the CSV log", "TensorBoard event files",
           "every\n  picture", "`--show-input`", "`data convert`", "decoded photo folders", "CIFAR-10's conversion",
           "downloaded datasets", "kernel\n  cache"]


def promises() -> list[str]:
    """The page's bullet points, each as one string."""
    text = PAGE.read_text()
    return [m.group(0) for m in re.finditer(r"^- .*?(?=^- |^\n|^#|\Z)", text, re.S | re.M)]


def test_the_readme_links_the_guarantees_page():
    readme = (ROOT / "README.md").read_text()
    assert "[docs/reliability.md](docs/reliability.md): what is guaranteed" in readme
    assert PAGE.read_text().startswith("# What is guaranteed")


def test_every_promise_names_the_tests_that_hold_it_and_they_exist():
    found = promises()
    assert len(found) >= 15, "the page's bullets were not found"
    for promise in found:
        cited = re.findall(r"tests/[\w/]+\.py", promise)
        assert cited, f"this promise names no test:\n{promise}"
        for path in cited:
            assert (ROOT / path).is_file(), f"{path}, named by the guarantees page, does not exist"


def test_every_input_and_every_output_is_covered():
    text = PAGE.read_text()
    for what in INPUTS + OUTPUTS:
        assert what in text, f"the guarantees page does not cover {what!r}"
