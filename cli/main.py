"""`dualnet`: the click application and its one rule for errors.

A user's mistake (bad option, missing file, corrupt data, unavailable device) prints one line,
`dualnet: error: ...`, and exits 2 for usage errors, 1 otherwise; never a traceback. Bugs keep
their traceback. Running out of host memory is reported the same way (exit 1).

One exception to "one line": a kernel that fails to compile prints `dualnet: error: <what failed
to compile>` and below it the compiler's log, indented (at most LOG_LINES lines), since a log
squeezed onto one line is unreadable. The first line alone still says what went wrong.

CUDA-side failures during a run (CuPy's CUDARuntimeError, CUBLASError, CompileException,
OutOfMemoryError, a CUDA library that cannot be loaded) are one line too, from
dualnet.gpu_errors.describe; out of GPU memory frees CuPy's pool first and reports its bytes.
"""

from __future__ import annotations

import sys

import click

from . import data_cmd, evaluate_cmd, export_cmd, gradcheck_cmd, info_cmd, plot_cmd, predict_cmd, train_cmd

CONTEXT = dict(help_option_names=["-h", "--help"], max_content_width=100)


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="dualnet", prog_name="dualnet")
def cli() -> None:
    """dualnet: train and inspect CNNs on NumPy (cpu) or CUDA (gpu) with one body of code.

    \b
    Examples:
      dualnet train                          # LeNet-5 on the bundled MNIST
      dualnet train --device gpu --epochs 20
      dualnet evaluate runs/lenet5.h5
      dualnet devices
    """
    from dualnet import outputs

    # one command: the guarded writer tracks its inputs and outputs until it ends
    click.get_current_context().with_resource(outputs.command())


for module in (train_cmd, evaluate_cmd, predict_cmd, info_cmd, gradcheck_cmd, plot_cmd, export_cmd, data_cmd):
    for command in module.COMMANDS:
        cli.add_command(command)


LOG_LINES = 40


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _with_log(message: str) -> str:
    """First line as the error, the rest (a compiler log) indented below it, shortened."""
    head, _, log = str(message).partition("\n")
    lines = [line.rstrip() for line in log.strip("\n").splitlines()]
    if len(lines) > LOG_LINES:
        lines = lines[:LOG_LINES] + [f"... ({len(lines) - LOG_LINES} more lines)"]
    return "\n".join([f"dualnet: error: {_one_line(head)}"] + ["  " + line for line in lines])


def _memory_hint(argv: list[str] | None) -> str:
    """What the command that ran out of memory can change (only options it has)."""
    args = sys.argv[1:] if argv is None else argv
    command = next((a for a in args if not a.startswith("-")), "")
    hints = {"train": "try a smaller --batch-size or --limit", "evaluate": "try a smaller --batch-size or --limit",
             "predict": "give fewer or smaller images", "featuremaps": "give a smaller image",
             "summary": "the model's size is set by --input-shape and --classes: give smaller ones",
             "export": "--input-shape sets the size of the inputs --verify runs: give a smaller one"}
    return hints.get(command, "free some memory and try again")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI and turn user errors into one line."""
    import warnings

    from dualnet import gpu_errors
    from dualnet.errors import DualnetError
    from dualnet.kernels.errors import KernelCompileError

    # a warning (a fallback taken, an oversubscribed host) is one line, not the source line below it
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"dualnet: warning: {message}\n"

    try:
        try:
            cli.main(args=argv, prog_name="dualnet", standalone_mode=False)
        except Exception as exc:
            line = gpu_errors.describe(exc)  # None unless CUDA (through a loaded CuPy) failed
            if line is None:
                raise
            click.echo(f"dualnet: error: {line}", err=True)
            sys.exit(1)
    except click.exceptions.Abort:
        click.echo("dualnet: aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        click.echo(f"dualnet: error: {_one_line(exc.format_message())}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"dualnet: error: {_one_line(exc.format_message())}", err=True)
        sys.exit(exc.exit_code)
    except KernelCompileError as exc:
        click.echo(_with_log(exc), err=True)
        sys.exit(1)
    except (DualnetError, ValueError, OSError) as exc:
        click.echo(f"dualnet: error: {_one_line(exc)}", err=True)
        sys.exit(1)
    except MemoryError as exc:
        detail = f" ({_one_line(exc)})" if str(exc) else ""
        click.echo(f"dualnet: error: out of memory{detail}; {_memory_hint(argv)}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("dualnet: interrupted", err=True)
        sys.exit(130)
    sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
