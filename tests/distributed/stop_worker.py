"""Run by every rank of the collective-stop tests: a fit that diverges, one that a callback on
one rank stops, or one in which one rank raises.

usage: python stop_worker.py OUT_DIR MODE   (MODE: diverge, stop, error)
diverge: writes OUT_DIR/diverge.rank<r>.txt, the TrainingDiverged message each rank raised.
stop: a callback on rank 1 only asks to stop after epoch 1; writes stop.rank<r>.json (the history).
error: rank 1 raises RuntimeError at its second progress report, inside dualnet's abort guard.
"""

from __future__ import annotations

import json
import pathlib
import sys

import dualnet as dn
from dualnet import distributed
from dualnet.train import TrainingDiverged


class StopAfterFirstEpoch:
    def on_epoch(self, state, record, model, optimizer) -> None:
        state.request_stop("rank 1 asked")


class FailOnSecondReport:
    calls = 0

    def on_batch(self, state, info) -> None:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("a failure on rank 1 alone")


def main() -> None:
    out, mode = pathlib.Path(sys.argv[1]), sys.argv[2]
    comm = distributed.communicator()
    full = dn.data.load_mnist("train")
    data = dn.data.Dataset(full.images[:256], full.labels[:256], name="mnist-head")
    model = dn.models.lenet5(seed=1)
    lr = 1e6 if mode == "diverge" else 0.05
    opt = dn.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    callbacks: list = []
    if comm.rank == 1:
        callbacks = [StopAfterFirstEpoch()] if mode == "stop" else [FailOnSecondReport()] if mode == "error" else []
    with distributed.abort_on_error(comm.comm, (TrainingDiverged,)):
        try:
            history = dn.fit(model, data, epochs=3, batch_size=32, optimizer=opt, comm=comm, callbacks=callbacks,
                             progress_every=2)
        except TrainingDiverged as exc:
            (out / f"diverge.rank{comm.rank}.txt").write_text(str(exc))
            return
    (out / f"{mode}.rank{comm.rank}.json").write_text(json.dumps(history))


if __name__ == "__main__":
    main()
