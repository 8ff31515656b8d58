"""dn.resume reports a changed schedule as `dualnet train --resume` prints it."""

from __future__ import annotations

import pytest

import dualnet as dn
from dualnet.run import ScheduleChangeWarning


def test_resume_beyond_a_finished_run_warns_how_the_learning_rate_goes_on(tmp_path):
    out = tmp_path / "quick.h5"
    dn.train_run(dn.RunConfig(data="digits", epochs=1, limit=64, validation=16, batch_size=32), out=out)
    with pytest.warns(ScheduleChangeWarning, match=r"extending a finished 1-epoch cosine run to 2 epochs: cosine"):
        dn.resume(out, epochs=2)
