"""Two ranks under mpiexec (dist_worker.py): identical ranks, reproducible, close to one process."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
from mpi_launch import run, worker


def _job(tmp_path_factory: pytest.TempPathFactory, device: str) -> pathlib.Path:
    out = tmp_path_factory.mktemp(f"dist-{device}")
    done = run(worker(str(out), device), n=2, timeout=180)
    assert done.returncode == 0, f"the 2-rank job failed:\n{done.stdout}\n{done.stderr}"
    return out


@pytest.fixture(scope="module", params=["cpu", "emu"])
def job(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return _job(tmp_path_factory, request.param)


def _load(out: pathlib.Path, name: str) -> dict[str, np.ndarray]:
    with np.load(out / f"{name}.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("run_name", ["sum", "ordered"])
def test_ranks_hold_bitwise_identical_parameters(job: pathlib.Path, run_name: str) -> None:
    a, b = _load(job, f"{run_name}.rank0"), _load(job, f"{run_name}.rank1")
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{run_name}: {k} differs between rank 0 and rank 1"


def test_rerun_reproduces_parameters_bitwise(job: pathlib.Path) -> None:
    a, again = _load(job, "sum.rank0"), _load(job, "sum_again.rank0")
    for k in a:
        assert np.array_equal(a[k], again[k]), f"{k} differs between two identical distributed fits"


@pytest.mark.parametrize("run_name", ["sum", "ordered"])
def test_distributed_fit_matches_single_process_within_float32_rounding(job: pathlib.Path, run_name: str) -> None:
    dist, single = _load(job, f"{run_name}.rank0"), _load(job, "single.rank0")
    for k in single:
        # a few float32 ulps of the parameter's scale: the shares' gradients are summed in another order
        scale = float(np.abs(single[k]).max())
        np.testing.assert_allclose(dist[k], single[k], rtol=0, atol=1e-5 * scale, err_msg=k)
        assert not np.array_equal(dist[k], np.zeros_like(dist[k]))


def test_reduced_loss_accuracy_and_validation_match_single_process(job: pathlib.Path) -> None:
    dist = json.loads((job / "sum.rank0.json").read_text())
    other = json.loads((job / "sum.rank1.json").read_text())
    single = json.loads((job / "single.rank0.json").read_text())
    assert len(dist) == len(single)
    for d, o, s in zip(dist, other, single):
        for key in ("train_loss", "val_loss"):
            assert d[key] == o[key]  # every rank reads the same reduced numbers
            assert d[key] == pytest.approx(s[key], rel=1e-5), key
        for key in ("train_acc", "val_acc", "lr"):
            assert d[key] == o[key] == s[key], key


@pytest.mark.parametrize("job", ["cpu"], indirect=True)  # the worker trains the batch-norm model on the CPU only
def test_batch_norm_running_statistics_are_identical_on_every_rank(job: pathlib.Path) -> None:
    a, b = _load(job, "bn.rank0"), _load(job, "bn.rank1")
    assert any(k.startswith("buffer:") and k.endswith("running_mean") for k in a)
    for k in a:
        assert np.array_equal(a[k], b[k]), k


@pytest.mark.parametrize("job", ["cpu"], indirect=True)  # the worker trains the colour run on the CPU only
def test_colour_recipe_batches_augmented_and_normalized_on_the_host_match_single_process(job: pathlib.Path) -> None:
    a, b, single = _load(job, "colour.rank0"), _load(job, "colour.rank1"), _load(job, "colour_single.rank0")
    for k in single:
        assert np.array_equal(a[k], b[k]), f"colour: {k} differs between rank 0 and rank 1"
        # the crop/flip draws belong to the global batch, so both ranks train on the one process's images
        scale = float(np.abs(single[k]).max())
        np.testing.assert_allclose(a[k], single[k], rtol=0, atol=1e-4 * scale, err_msg=k)
