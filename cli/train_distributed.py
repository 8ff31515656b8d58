"""`dualnet train --distributed`: the options, and the places the train command asks the job (the
rank's device, the communicator, the ranks' agreement on preparing the run, the guard that aborts the
job on a one-rank error while training)."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from typing import Any

import click

from dualnet import distributed as dist
from dualnet.errors import DualnetError
from dualnet.train import TrainingDiverged, TrainingInterrupted


def distributed_options(command):
    """Decorate the train command with --distributed and --reduction (parameters distributed, reduction)."""
    options = [
        click.option("--distributed", is_flag=True,
                     help="Data-parallel training under mpiexec -n N: --batch-size is the global batch, rank r "
                          "takes batch[r::N]; rank 0 prints and writes the checkpoint."),
        click.option("--reduction", type=click.Choice(dist.REDUCTIONS), default="sum", show_default=True,
                     help="With --distributed: how gradients are summed (ordered: all-gather, then a rank-ordered "
                          "sum, bits independent of the MPI library).")]
    for option in reversed(options):
        command = option(command)
    return command


def rank_device(distributed: bool, device: str) -> str:
    """--device for this rank: with --distributed, "gpu" (and "auto" with a GPU) become gpu:<local rank>."""
    return dist.rank_device(device) if distributed else device


class _Silent(io.StringIO):
    """A text stream that keeps nothing: what ranks other than 0 print."""

    def write(self, text: str) -> int:
        return len(text)


def communicator(distributed: bool, reduction: str, dev: Any) -> Any:
    """The job's communicator (None without --distributed); ranks other than 0 print nothing from here on."""
    if not distributed:
        if reduction != "sum":
            raise click.UsageError("--reduction applies to --distributed only", ctx=click.get_current_context())
        return None
    comm = dist.communicator(device=dev, reduction=reduction)
    if comm.rank:
        # rank 0 speaks for the job; errors of another rank still reach the terminal (abort_on_error)
        sys.stdout = sys.stderr = _Silent()
    return comm


def guard(comm: Any) -> contextlib.AbstractContextManager:
    """Around training: an error on one rank aborts the whole job (the others may be blocked in a
    collective); an interrupt, a divergence and a refused setting (DistributedError) are raised by every rank
    at the same point and exit normally."""
    if comm is None:
        return contextlib.nullcontext()
    return dist.abort_on_error(comm.comm, (TrainingInterrupted, TrainingDiverged, dist.DistributedError))


@contextlib.contextmanager
def together(comm: Any) -> Iterator[None]:
    """Around what each rank prepares alone (reading its data and checkpoint, checking options): the
    ranks then compare outcomes in one collective, so a refusal on one rank (its --data missing, say)
    is raised on every rank, naming the rank, instead of leaving the others waiting in the next
    collective. Without a job (comm None) errors pass as they are."""
    if comm is None:
        yield
        return
    problem = None
    try:
        yield
    except Exception as exc:  # every rank must reach the collective below
        text = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
        problem = text if isinstance(exc, (click.ClickException, DualnetError, ValueError, OSError)) \
            else f"{type(exc).__name__}: {text}"
    every = comm.allgather(problem)
    failed = [(r, p) for r, p in enumerate(every) if p is not None]
    if failed:
        if len(failed) == len(every) and len({p for _, p in failed}) == 1:
            raise dist.DistributedError(failed[0][1])
        raise dist.DistributedError("; ".join(f"rank {r}: {p}" for r, p in failed))


def resume_command(comm: Any) -> str:
    """How the interrupted run is resumed: the same job shape for a distributed one."""
    return "dualnet train" if comm is None else f"mpiexec -n {comm.size} dualnet train --distributed"
