"""Every file dualnet creates or replaces goes through dualnet.outputs: a scan of dualnet/ and cli/
finds no other call that writes, renames or creates a file (or a temporary) anywhere else.

A call is allowed outside dualnet/outputs/ only when it writes into the file object or temporary
path that `outputs.writing(...)` / `outputs.replacing(...)` / `outputs.scratch_folder(...)` gave
it (`with outputs.writing(path, what) as f: image.save(f)`), or is HDF5 built in memory
(`driver="core", backing_store=False`).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = [ROOT / "dualnet", ROOT / "cli"]
GUARD = ROOT / "dualnet" / "outputs"
# calls that create, replace or rename files, by the name they are called through
FORBIDDEN_FUNCS = {"os.replace", "os.rename", "os.renames", "os.link", "os.symlink", "os.mkfifo", "os.mknod",
                   "os.open", "os.fdopen", "os.makedirs", "shutil.move", "shutil.copy", "shutil.copy2",
                   "shutil.copyfile", "shutil.copytree", "tempfile.mkstemp", "tempfile.mkdtemp",
                   "tempfile.NamedTemporaryFile", "tempfile.TemporaryFile", "tempfile.SpooledTemporaryFile",
                   "tempfile.TemporaryDirectory", "np.save", "np.savez", "np.savez_compressed", "np.savetxt",
                   "numpy.save", "onnx.save", "onnx.save_model", "urllib.request.urlretrieve", "urlretrieve",
                   "SummaryWriter", "FileWriter", "zipfile.ZipFile"}
# methods that write to the path they are given or hold
FORBIDDEN_METHODS = {"write_text", "write_bytes", "touch", "mkdir", "rename", "replace", "symlink_to",
                     "hardlink_to", "link_to", "savefig", "tofile", "imsave"}
WRITE_MODES = set("wax+")
# dualnet.data.atomic.written_atomically is outputs.replacing with the folder made by output_folder
SCOPES = {"writing", "replacing", "scratch_folder", "written_atomically"}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return "?"


def _mode(call: ast.Call, position: int) -> str | None:
    """The mode argument as text ("?" when not a constant), or None when absent."""
    arg = next((k.value for k in call.keywords if k.arg == "mode"), None)
    if arg is None and len(call.args) > position:
        arg = call.args[position]
    if arg is None:
        return None
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else "?"


def _guarded_names(tree: ast.AST) -> set[str]:
    """Names bound by `with outputs.writing(...) as NAME` (and replacing, scratch_folder)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                call = item.context_expr
                if (isinstance(call, ast.Call) and _name(call.func).split(".")[-1] in SCOPES
                        and isinstance(item.optional_vars, ast.Name)):
                    names.add(item.optional_vars.id)
    return names


def _uses(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))


def writers_outside_the_guard(path: pathlib.Path) -> list[str]:
    """"file:line call" for every call in `path` that writes a file without the guarded writer."""
    tree = ast.parse(path.read_text(), str(path))
    guarded = _guarded_names(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        method = node.func.attr if isinstance(node.func, ast.Attribute) else None
        target = node.args[0] if node.args else None
        through_guard = target is not None and _uses(target, guarded)
        if method is not None and isinstance(node.func, ast.Attribute) and _uses(node.func.value, guarded):
            through_guard = True  # tmp.write_text(...) on a guarded temporary
        bad = False
        if name.startswith(("outputs.", "dualnet.outputs.")):
            continue  # the guarded writer itself
        if name in ("open", "io.open", "builtins.open", "codecs.open", "gzip.open", "bz2.open", "lzma.open"):
            mode = _mode(node, 1)
            bad = mode is not None and bool(WRITE_MODES & set(mode)) or mode == "?"
        elif name == "tarfile.open":  # reading an archive ("r", "r:gz") writes nothing
            mode = _mode(node, 1)
            bad = mode is not None and not mode.startswith("r")
        elif name.endswith("h5py.File") or name == "File":
            mode = _mode(node, 1)
            in_memory = any(k.arg == "backing_store" and isinstance(k.value, ast.Constant) and k.value.value is False
                            for k in node.keywords)
            bad = mode not in (None, "r") and not in_memory
        elif name in FORBIDDEN_FUNCS or name.split(".")[-1] in {"urlretrieve", "SummaryWriter", "FileWriter"}:
            bad = True
        elif method in FORBIDDEN_METHODS:
            # Path.replace(target) / Path.rename(target): one argument; str.replace and a dataclass's
            # replace(**changes) are not file operations
            bad = method not in ("replace", "rename") or (len(node.args) == 1 and not node.keywords)
        elif method == "save" and any(isinstance(a, ast.Constant) and a.value == "PNG" for a in
                                      [*node.args, *(k.value for k in node.keywords)]):
            bad = True  # PIL's Image.save(path, format="PNG")
        if bad and not through_guard:
            where = path.relative_to(ROOT) if ROOT in path.parents else path.name
            found.append(f"{where}:{node.lineno} {name}")
    return found


def _sources() -> list[pathlib.Path]:
    return sorted(p for package in PACKAGES for p in package.rglob("*.py") if GUARD not in p.parents)


def test_no_file_is_written_outside_the_guarded_writer():
    found = [hit for path in _sources() for hit in writers_outside_the_guard(path)]
    assert found == [], "files written outside dualnet.outputs:\n" + "\n".join(found)


@pytest.mark.parametrize("code", [
    'open(p, "w")', 'open(p, mode="ab")', 'open(p, m)', 'pathlib.Path(p).write_text("x")', 'p.write_bytes(b"")',
    'os.replace(a, b)', 'os.rename(a, b)', 'h5py.File(p, "w")', 'h5py.File(p, mode="a")', 'fig.savefig(p)',
    'np.save(p, a)', 'tempfile.mkstemp()', 'shutil.copy(a, b)', 'image.save(p, format="PNG")',
    'SummaryWriter(d)', 'onnx.save(m, p)', 'os.open(p, os.O_WRONLY)', 'p.touch()', 'p.mkdir()'])
def test_the_scan_finds_each_kind_of_writer(tmp_path, code):
    path = tmp_path / "probe.py"
    path.write_text(f"def f(p, a, b, d, m, fig, image):\n    {code}\n")
    assert len(writers_outside_the_guard(path)) == 1


@pytest.mark.parametrize("code", [
    'open(p)', 'open(p, "rb")', 'h5py.File(p, "r")', 'h5py.File("x", "w", driver="core", backing_store=False)',
    'text.replace("a", "b")', 'name.replace("a", "b")',
    'with outputs.writing(p, "picture") as f:\n        fig.savefig(f)',
    'with outputs.writing(p, "picture") as f:\n        image.save(f, format="PNG")',
    'with outputs.scratch_folder(d) as tmp:\n        (tmp / "x").write_text("y")'])
def test_the_scan_allows_reads_and_guarded_writes(tmp_path, code):
    path = tmp_path / "probe.py"
    path.write_text(f"def f(p, a, b, d, m, fig, image, text, name):\n    {code}\n")
    assert writers_outside_the_guard(path) == []
