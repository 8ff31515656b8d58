"""The CLI's conventions (written down in cli/common.py), held over every command: help for every
option, --device auto by default with cuda accepted, --num-classes for a class count, one short
device line."""

from __future__ import annotations

import click
import pytest
from cli_helpers import run_main
from click.testing import CliRunner

from dualnet_cli.main import cli

COMMANDS = sorted(cli.commands.items())


def _options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and p.name != "help"]


@pytest.mark.parametrize("name,command", COMMANDS, ids=[name for name, _ in COMMANDS])
def test_every_option_of_every_command_has_help_and_shows_in_its_help_page(name, command):
    page = CliRunner().invoke(cli, [name, "--help"], terminal_width=200)
    assert page.exit_code == 0, page.output
    assert "Example" in page.output, f"dualnet {name} --help shows no example"
    for option in _options(command):
        assert option.help and option.help.strip(), f"dualnet {name} {option.opts[0]} has no help text"
        assert option.opts[0] in page.output


@pytest.mark.parametrize("name,command", COMMANDS, ids=[name for name, _ in COMMANDS])
def test_device_defaults_to_auto_and_a_class_count_is_num_classes(name, command):
    for option in _options(command):
        if option.name == "device":
            assert option.default == "auto", f"dualnet {name} --device defaults to {option.default!r}"
        if any("classes" in opt for opt in option.opts):
            assert "--num-classes" in option.opts, f"dualnet {name} {option.opts}: a class count is --num-classes"


def test_every_command_that_computes_takes_a_device():
    computing = {"train", "evaluate", "predict", "gradcheck"}
    assert computing <= {name for name, command in COMMANDS if any(o.name == "device" for o in _options(command))}


@pytest.mark.parametrize("alias", ["cuda", "cuda:0", "CUDA:1"])
def test_cuda_is_an_alias_of_gpu(alias, capsys):
    from dualnet.backend import _cupy_status

    if _cupy_status(0)[0]:
        pytest.skip("a GPU is usable here: the alias would start a run")
    rc, _, err = run_main(["train", "--device", alias, "--epochs", "1", "--limit", "10"], capsys)
    assert rc == 1 and "unknown device" not in err
    assert f"device 'gpu:{alias[-1] if ':' in alias else 0}' is unavailable" in err


def test_summary_takes_num_classes_and_keeps_classes_as_an_alias(capsys):
    outputs = []
    for flag in ("--num-classes", "--classes"):
        rc, out, err = run_main(["summary", "lenet5", flag, "7"], capsys)
        assert rc == 0, err
        outputs.append(out)
    assert outputs[0] == outputs[1] and " 7 " in outputs[0].split("fc3")[1].splitlines()[0] + " "


def test_the_device_line_is_short_and_sends_the_gpu_story_to_devices(tmp_path, capsys):
    import dualnet as dn

    path = tmp_path / "m.h5"
    dn.save(dn.models.digits_cnn(), path)
    rc, _, err = run_main(["evaluate", str(path), "--data", "digits", "--limit", "8"], capsys)
    assert rc == 0, err
    line = next(line for line in err.splitlines() if line.startswith("device:"))
    assert len(line) <= 80 and "install" not in line
    if line.startswith("device: cpu (auto"):
        assert "dualnet devices" in line


def _all_commands(group: click.Group = cli, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _all_commands(command, f"{prefix}{name} ")
        else:
            found.append((f"{prefix}{name}", command))
    return found


# the parameters that name a file a command writes (issue 20.8)
OUTPUT_PARAMS = {"out", "out_option", "plot_path", "show_path", "log_csv"}
WRITING = {"train", "export", "evaluate", "predict", "plot", "filters", "featuremaps", "data convert"}


def test_every_command_that_writes_a_named_file_takes_overwrite_with_the_same_help():
    # `data fetch` writes too, but into the user cache, never to a path the user names: it has no
    # --overwrite and ends with `wrote:` lines for the files it downloaded (tests/data/test_named.py)
    from dualnet_cli.common import OVERWRITE_HELP

    writing = {name for name, command in _all_commands() if {p.name for p in command.params} & OUTPUT_PARAMS}
    assert writing == WRITING
    for name, command in _all_commands():
        if name in WRITING:
            overwrite = [o for o in _options(command) if o.name == "overwrite"]
            assert overwrite and overwrite[0].opts == ["--overwrite"] and overwrite[0].help == OVERWRITE_HELP, name
