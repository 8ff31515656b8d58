"""What a run (dualnet.run.Run) does differently on a job of several ranks: the ranks agree on the run
first (dualnet.distributed.agreement), callbacks and the checkpoint writer run on rank 0 only, each
checkpoint written after a barrier and recording the job."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .agreement import check_agreement, run_fingerprint


class _Barrier:
    """A fit callback: every rank waits here at each epoch's end, before rank 0 writes its checkpoint."""

    def __init__(self, comm: Any) -> None:
        self.comm = comm

    def on_epoch(self, state: Any, record: dict, model: Any, optimizer: Any) -> None:
        self.comm.barrier()


def agree(comm: Any, config: dict, splits: dict[str, Any]) -> None:
    """Refuse (DistributedError on every rank) a job whose ranks were given another run configuration
    (`config`, RunConfig.to_dict()), other data (`splits`: {"train": Dataset, ...}) or another reduction."""
    if comm is not None:
        job = {k: v for k, v in comm.describe().items() if k != "world_size"}
        check_agreement(comm, run_fingerprint(config, splits, job))


def rank_callbacks(comm: Any, callbacks: list[Any], writer: Any) -> list[Any]:
    """`callbacks` (the checkpoint `writer` last) as this rank runs them: all on rank 0, a barrier before
    the writer; only the barrier elsewhere. The writer records the job in every checkpoint."""
    if comm is None:
        return callbacks
    writer.metadata["distributed"] = comm.describe()
    barrier = _Barrier(comm)
    if comm.rank:
        return [barrier]
    return [cb for cb in callbacks if cb is not writer] + [barrier, writer]


@contextlib.contextmanager
def one_writer(comm: Any) -> Iterator[bool]:
    """Around the save of an interrupted run: yields whether this rank writes; every rank waits until
    the state is the same everywhere, and again until the checkpoint is on disk, so all exit together."""
    if comm is None:
        yield True
        return
    comm.barrier()
    yield comm.rank == 0
    comm.barrier()
