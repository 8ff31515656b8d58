"""dualnet.data.idx: the IDX format reader, round trips and every malformed file it must refuse."""

import gzip
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from idx_files import idx_bytes, write

from dualnet.data.idx import read_idx, read_idx_header
from dualnet.errors import DataError

idx_dtypes = st.sampled_from([np.dtype(d) for d in ("u1", "i1", ">i2", "<i4", ">f4", "<f8")])


@settings(deadline=None)
@given(array=hnp.arrays(idx_dtypes, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0,
                                                      max_side=5)),
       compress=st.booleans())
def test_idx_round_trip(tmp_path_factory, array, compress):
    path = write(tmp_path_factory.mktemp("idx") / "a.idx", idx_bytes(array), compress)
    got = read_idx(path)
    assert got.shape == array.shape and got.dtype == array.dtype.newbyteorder("=")
    assert got.tobytes() == array.astype(got.dtype).tobytes()
    assert read_idx_header(path) == (got.dtype, array.shape)


# Malformed input ----------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("case, payload, match", [
    ("wrong magic", b"\x08\x03\x00\x00" + bytes(20), "wrong magic"),
    ("unknown type", idx_bytes(np.zeros(3, "u1"), code=0x0A), "unknown IDX type"),
    ("short header", b"\x00\x00\x08\x03\x00\x00", "truncated header"),
    ("truncated", idx_bytes(np.zeros((2, 3, 3), "u1"))[:-1], "truncated"),
    ("trailing", idx_bytes(np.zeros((2, 3, 3), "u1")) + b"\x00", "trailing"),
    ("empty", b"", "too short"),
])
def test_malformed_idx_raises(tmp_path, case, payload, match, compress):
    path = write(tmp_path / "bad-idx", payload, compress)
    with pytest.raises(DataError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("compress", [False, True])
def test_huge_header_fails_before_allocating(tmp_path, compress):
    # 10**12 uint8 elements claimed by a header followed by a few bytes.
    path = write(tmp_path / "huge", idx_bytes(np.zeros(8, "u1"), dims=(10**4, 10**4, 10**4)),
                 compress)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DataError, match="header is corrupt"):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20 and time.perf_counter() - start < 1.0


def test_corrupt_gzip_stream(tmp_path):
    good = gzip.compress(idx_bytes(np.arange(200, dtype="u1")))
    path = write(tmp_path / "bad.gz", good[:20] + bytes(len(good) - 20))
    with pytest.raises(DataError, match="bad.gz"):
        read_idx(path)


def test_missing_file_is_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "nope")
