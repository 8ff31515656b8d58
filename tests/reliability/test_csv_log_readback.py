"""The CSV log read back on --resume (issue 20.1): a FIFO does not hang, and a field over the csv
module's limit is one line naming the file, not a `_csv.Error` traceback after an epoch."""

from __future__ import annotations

import csv
import os

import pytest

from dualnet.callbacks import CSVLogger
from dualnet.errors import DualnetError


def test_a_field_over_the_csv_limit_is_one_error_naming_the_log(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("epoch,train_loss\n1," + "9" * (csv.field_size_limit() + 10) + "\n")
    with pytest.raises(DualnetError, match=r"CSVLogger: .*log\.csv line \d+: .*field larger than field limit"):
        CSVLogger(log, append=True)._existing(2)


def test_a_fifo_as_the_log_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "log.csv"
    os.mkfifo(fifo)
    with pytest.raises(DualnetError, match="FIFO"):
        CSVLogger(fifo, append=True)._existing(2)
