"""Corpus checkpoints with one bad layer buffer (format 2's /model/buffers); make_corpus.py's main
writes them with the rest, or alone:

    python tests/reliability/make_corpus_buffers.py
"""

from __future__ import annotations

import sys

import numpy as np
from make_corpus import ckpt, replace

import dualnet as dn
from dualnet.layers import BatchNorm1d, Flatten, Linear

B = "model/buffers/"


def bn_model() -> dn.Sequential:
    """Flatten + Linear(784, 10) + BatchNorm1d(10): what `dualnet evaluate/predict` accept, with buffers."""
    model = dn.Sequential(Flatten(), Linear(784, 10, seed=0), BatchNorm1d(10), input_shape=(1, 28, 28))
    for p in model.parameters():  # small, compressible weights keep the files small
        p.data = np.round(p.data * 16) / 16
    return model


def make_buffers() -> None:
    ckpt("buffer-shape-mismatch", replace(B + "bn1.running_mean", np.zeros(7, np.float32)), model=bn_model())
    ckpt("buffer-missing", lambda f: f.__delitem__(B + "bn1.running_var"), model=bn_model())


if __name__ == "__main__":
    dn.use_device("cpu")
    make_buffers()
    sys.exit(0)
