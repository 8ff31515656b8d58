"""Before a data-parallel run trains, its ranks agree: the same run configuration and the same data.

Rank 0's parameters and run state are broadcast at the start, but each rank reads its own data
and applies its own settings at every step: a rank given another `--data` file or another `--lr`
would train silently, and "every rank holds identical parameters" would break. So each rank
gathers, in one collective, every rank's

* run configuration (`RunConfig.to_dict()` without the data path) and job settings (the
  communicator's reduction), and
* data identity for each split (train, val, test), independent of where the files lie: the
  number of images, one image's shape and dtype, the class count and label counts, a SHA-256 of
  the labels and one of `SAMPLE_ROWS` images at evenly spaced rows (read now, streamed or not),

and every rank raises the same DistributedError, naming the option or the data each rank gave and
the ranks that differ from rank 0. Hosts that each hold their own copy of the same data (other
paths) agree.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from .job import DistributedError

__all__ = ["SAMPLE_ROWS", "data_identity", "run_fingerprint", "check_agreement"]

#: images hashed per split: evenly spaced rows, first and last included
SAMPLE_ROWS = 16
_IDENTITY_WORDS = {"images": "the number of images", "shape": "the image shape", "dtype": "the pixel dtype",
                   "num_classes": "the class count", "label_counts": "the label counts",
                   "labels_sha256": "the labels", "sample_sha256": "the images"}


def data_identity(dataset: Any) -> dict[str, Any] | None:
    """A split's identity, independent of its path (see the module docstring); None for no split."""
    if dataset is None:
        return None
    n = len(dataset)
    labels = np.ascontiguousarray(np.asarray(dataset.labels), dtype="<i8")
    rows = np.unique(np.linspace(0, n - 1, min(n, SAMPLE_ROWS)).round().astype(np.int64)) if n else np.zeros(0, int)
    sample = np.ascontiguousarray(dataset.images[rows]) if n else np.zeros(0, np.float32)
    k = int(getattr(dataset, "num_classes", 0) or 0)
    return {"images": n, "shape": tuple(int(v) for v in dataset.images.shape[1:]), "dtype": str(sample.dtype),
            "num_classes": k, "label_counts": np.bincount(labels, minlength=k).tolist() if n else [],
            "labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest(),
            "sample_sha256": hashlib.sha256(sample.tobytes()).hexdigest()}


def run_fingerprint(config: dict[str, Any], splits: dict[str, Any], job: dict[str, Any] | None = None) -> dict:
    """What the ranks compare: `config` (a RunConfig.to_dict(); its "data" entry is shown, not compared),
    the identity of each of `splits` ({"train": Dataset, ...}) and `job` (e.g. {"reduction": "sum"})."""
    return {"config": {k: v for k, v in config.items() if k != "data"}, "job": dict(job or {}),
            "data": {name: data_identity(ds) for name, ds in splits.items()}, "source": str(config.get("data"))}


def check_agreement(comm: Any, fingerprint: dict) -> None:
    """Gather every rank's `fingerprint` (run_fingerprint) in one collective; raise DistributedError
    on every rank when any rank's differs from rank 0's, naming the options or the data and the ranks."""
    every = comm.allgather(fingerprint)
    problems = _differences(every)
    if problems:
        raise DistributedError(f"the ranks disagree: {'; '.join(problems)}; every rank must run the same "
                               "command on the same data (a copy of it on each host is fine)")


def _option(field: str) -> str:
    return "--" + field.replace("_", "-")


def _by_rank(values: list[Any]) -> str:
    return ", ".join(f"rank {r}: {v}" for r, v in enumerate(values))


def _differences(every: list[dict]) -> list[str]:
    first = every[0]
    problems: list[str] = []
    for part in ("config", "job"):
        for key in sorted(set().union(*(f[part] for f in every))):
            values = [f[part].get(key) for f in every]
            if any(v != values[0] for v in values[1:]):
                problems.append(f"{_option(key)} differs ({_by_rank(values)})")
    odd_ranks: set[int] = set()
    splits = []
    for split in first["data"]:
        identities = [f["data"].get(split) for f in every]
        odd = [r for r, ident in enumerate(identities) if ident != identities[0]]
        if not odd:
            continue
        odd_ranks.update(odd)
        what = "whether there is one"
        if identities[0] is not None and all(identities[r] is not None for r in odd):
            what = next(_IDENTITY_WORDS[key] for key in _IDENTITY_WORDS
                        if any(identities[r][key] != identities[0][key] for r in odd))
        splits.append(f"{split}: {what}")
    if splits:
        sources = ", ".join(f"rank {r}'s {every[r]['source']}" for r in [0, *sorted(odd_ranks)])
        problems.append(f"--data differs ({sources} hold different data; {', '.join(splits)} differ)")
    return problems
