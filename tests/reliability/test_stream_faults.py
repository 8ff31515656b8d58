"""Streaming faults name the file (issue 20.6): a data file truncated or overwritten by another
program during a `--stream` run is one line naming the file, the dataset and the records; a dataset
with a filter that is not one of HDF5's built-in ones is refused from its metadata, before anything
is read (so HDF5 never searches its plugin folder); a chunk layout that would make each streamed
batch cost far more than its images is refused. On the main of before, each gave HDF5's own text
(or was read)."""

from __future__ import annotations

import os
import pathlib

import h5py
import numpy as np
import pytest

import dualnet as dn
from dualnet.errors import DataError
from dualnet_cli.main import main

N, H, W = 64, 8, 8


def _write(path: pathlib.Path, chunks=(8, H, W), compression="gzip", size=(H, W)) -> pathlib.Path:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=rng.integers(0, 256, (N, *size), dtype=np.uint8), chunks=chunks,
                         compression=compression)
        f.create_dataset("labels", data=np.arange(N) % 10)
    return path


@pytest.mark.parametrize("how", ["truncated", "overwritten"])
def test_a_file_changed_during_a_stream_is_one_error_naming_file_dataset_and_records(tmp_path, how):
    path = _write(tmp_path / "data.h5")
    data = dn.data.load(path, "train", validation=0, stream=True)
    try:
        data.images[np.arange(8)]  # readable while the file is whole
        size = path.stat().st_size
        with open(path, "r+b") as f:
            if how == "truncated":
                f.truncate(size // 3)
            else:  # another program writes over the file in place: the same inode, other bytes
                f.seek(2048)
                f.write(b"\xff" * (size - 2048))
        with pytest.raises(DataError) as info:
            data.images[np.arange(N)]
    finally:
        data.close()
    message = str(info.value)
    assert str(path) in message and "/images" in message and "records" in message, message
    assert "\n" not in message


def test_a_filter_outside_hdf5s_built_in_ones_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "zstd.h5"
    with h5py.File(path, "w") as f:  # zstd (32015): a registered id, but a plugin, not built in
        ds = f.create_dataset("images", shape=(N, H, W), dtype=np.uint8, chunks=(N, H, W), compression=32015,
                              allow_unknown_filter=True)
        ds.id.write_direct_chunk((0, 0, 0), b"\x00" * 16)
        f.create_dataset("labels", data=np.arange(N) % 10)
    monkeypatch.setenv("HDF5_PLUGIN_PATH", str(tmp_path / "plugins-must-not-be-searched"))
    for stream in (False, True):
        with pytest.raises(DataError, match=r"zstd\.h5.*/images.*filter 32015.*not one of HDF5's built-in filters"):
            dn.data.load(path, "train", validation=0, stream=stream)


def test_one_pixel_chunks_are_refused_for_streaming(tmp_path):
    path = _write(tmp_path / "pixels.h5", chunks=(1, 1, 1), compression=None, size=(16, 16))
    with pytest.raises(DataError, match=r"pixels\.h5:/images: chunks of shape \(1, 1, 1\) split each image into 256 "
                                        r"pieces, more than the 64"):
        dn.data.load(path, "train", validation=0, stream=True)
    assert len(dn.data.load(path, "train", validation=0)) == N  # read whole, the layout costs nothing extra


def test_an_unknown_filter_through_the_cli_is_one_line(tmp_path, capsys):
    path = tmp_path / "lz4.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("images", shape=(N, H, W), dtype=np.uint8, chunks=(N, H, W), compression=32004,
                              allow_unknown_filter=True)
        ds.id.write_direct_chunk((0, 0, 0), b"\x00" * 16)
        f.create_dataset("labels", data=np.arange(N) % 10)
    with pytest.raises(SystemExit) as info:
        main(["train", "--data", str(path), "--stream", "--epochs", "1", "--device", "cpu",
              "--out", str(tmp_path / "run.h5")])
    err = capsys.readouterr().err
    assert info.value.code == 1 and len(err.strip().splitlines()) == 1, err
    assert "lz4.h5" in err and "filter 32004" in err
    assert not os.path.exists(tmp_path / "run.h5")
