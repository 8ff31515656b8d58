"""Streamed HDF5 splits: images stay in the file and each batch is read when it is needed, so a
dataset larger than memory trains with bounded memory (`dn.data.load(path, split, stream=True)`).

A `StreamDataset` is a `Dataset` whose ``images`` is an `H5Images`: indexing it with a slice or
with integer indices reads those rows (sorted and de-duplicated, so each chunk of the file is
visited once and in order, then put back in the order asked), converted as an in-memory load
converts them (uint8 / 255, float checked to lie in [0, 1]). Labels are read into memory.
`prefetched` reads the next batches in a background thread while the current one trains.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from ..errors import DataError
from .dataset import Dataset, _as_unit_float32

__all__ = ["H5Images", "StreamDataset", "prefetched", "check_stream_layout", "MAX_CHUNKS_PER_IMAGE",
           "MAX_STREAM_CHUNK_BYTES"]

#: a streamed images dataset whose chunks cut one image into more pieces than this is refused: each
#: piece is a separate lookup and read (one-pixel chunks made a batch cost ~10x the memory of the
#: same data chunked by whole images)
MAX_CHUNKS_PER_IMAGE = 64
#: ... and so is one whose chunks are larger than this: a compressed chunk is inflated whole for
#: any row of it a batch asks for
MAX_STREAM_CHUNK_BYTES = 64 << 20


def check_stream_layout(ds: Any, where: str) -> None:
    """Raise DataError if streaming images dataset `ds` batch by batch would cost more than the
    documented bounds (MAX_CHUNKS_PER_IMAGE pieces per image, MAX_STREAM_CHUNK_BYTES per chunk),
    judged from its chunk shape alone."""
    chunks = ds.chunks
    if chunks is None:
        return  # contiguous: a row is one read
    pieces = 1
    for size, chunk in zip(ds.shape[1:], chunks[1:], strict=True):
        pieces *= -(-size // chunk)
    fix = (f"rewrite it with chunks of whole images, e.g. h5py's chunks=({min(64, max(1, ds.shape[0]))}, "
           f"{', '.join(map(str, ds.shape[1:]))})")
    if pieces > MAX_CHUNKS_PER_IMAGE:
        raise DataError(f"{where}: chunks of shape {tuple(chunks)} split each image into {pieces:,} pieces, more "
                        f"than the {MAX_CHUNKS_PER_IMAGE} a streamed read accepts; {fix}, or load it without --stream")
    nbytes = math.prod(chunks) * ds.dtype.itemsize
    if nbytes > MAX_STREAM_CHUNK_BYTES:
        raise DataError(f"{where}: chunks of shape {tuple(chunks)} hold {nbytes:,} bytes each, more than the "
                        f"{MAX_STREAM_CHUNK_BYTES:,} a streamed batch may read for one image; {fix}")


class H5Images:
    """Rows [start, stop) of an HDF5 images dataset, read on indexing as float32 (B, C, H, W)."""

    def __init__(self, ds: Any, start: int, stop: int, where: str):
        self._ds, self._start, self._stop, self._where = ds, start, stop, where
        c_h_w = tuple(ds.shape[1:]) if ds.ndim == 4 else (1, *ds.shape[1:])
        if 0 in c_h_w:
            raise DataError(f"{where}: images have shape {ds.shape}; expected (N, H, W) or (N, C, H, W) with "
                            "non-empty images")
        self.shape = (stop - start, *c_h_w)
        self.dtype = np.dtype(np.float32)
        self.ndim = 4

    def __len__(self) -> int:
        return self.shape[0]

    def view(self, rows: slice) -> H5Images:
        """The rows `rows` (a slice of step 1) of these, still in the file."""
        start, stop, step = rows.indices(len(self))
        if step != 1:
            raise DataError(f"{self._where}: a streamed split takes slices of step 1, got {rows}")
        return H5Images(self._ds, self._start + start, self._start + max(start, stop), self._where)

    def __getitem__(self, key: slice | np.ndarray | list[int]) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            lo, hi = self._start + start, self._start + max(start, stop)
            raw = self._guarded(lambda: self._ds[lo:hi][::step], lo, hi)
        else:
            idx = np.asarray(key, dtype=np.int64).reshape(-1)
            if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
                raise IndexError(f"{self._where}: row index out of range for {len(self)} rows")
            # increasing, distinct rows: one pass over the file in order, then back in the order asked
            wanted, back = np.unique(idx + self._start, return_inverse=True)
            span = (int(wanted[0]), int(wanted[-1]) + 1) if len(wanted) else (self._start, self._start)
            raw = self._guarded(lambda: self._read_sorted(wanted), *span)[back.reshape(-1)]
        if raw.ndim == 3:
            raw = raw[:, None]
        return _as_unit_float32(raw, self._where)

    def _guarded(self, read: Callable[[], np.ndarray], lo: int, hi: int) -> np.ndarray:
        """read(), its failure (the file truncated, overwritten or damaged since it was opened) as
        one DataError naming the file, the dataset and the records."""
        try:
            return read()
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            detail = " ".join(str(exc).split())[:200]
            raise DataError(f"{self._where}: cannot read records {lo}..{hi - 1} ({type(exc).__name__}: {detail}); "
                            "the file was changed, truncated or damaged while the run read it: restore it and "
                            "resume the run") from None

    def _read_sorted(self, rows: np.ndarray) -> np.ndarray:
        """Rows `rows` (increasing, distinct) of the file, chunk-aware: a compressed chunk is inflated
        once for all its rows asked (one slice from the first to the last of them); an uncompressed
        dataset is read run by run of consecutive rows, only the bytes asked (the file is opened
        without a chunk cache, so no whole chunk is read for one row)."""
        ds = self._ds
        out = np.empty((len(rows), *ds.shape[1:]), ds.dtype)
        if not len(rows):
            return out
        filtered = ds.chunks is not None and bool(ds.compression or ds.shuffle or ds.scaleoffset or ds.fletcher32)
        if filtered:
            cut = np.flatnonzero(np.diff(rows // ds.chunks[0])) + 1
        else:
            cut = np.flatnonzero(np.diff(rows) != 1) + 1
        at = 0
        for group in np.split(rows, cut):
            lo, hi = int(group[0]), int(group[-1]) + 1
            block = ds[lo:hi]
            out[at:at + len(group)] = block if hi - lo == len(group) else block[group - lo]
            at += len(group)
        return out

    def astype(self, dtype: Any, copy: bool = True) -> np.ndarray:
        """Every row, read now (what an in-memory split would hold)."""
        return self[:].astype(dtype, copy=False)


class StreamDataset(Dataset):
    """A split of an HDF5 file whose images are read batch by batch (see the module docstring).

    Attributes as `Dataset`'s; ``images`` is an `H5Images`. The file stays open until `close`."""

    def __init__(self, f: Any, images_ds: Any, labels: np.ndarray, rows: slice, num_classes: int, name: str):
        self._file = f
        images = H5Images(images_ds, rows.start, rows.stop, f"{f.filename}:{images_ds.name}")
        self._assign(images, labels, name, num_classes)

    def _rows(self, rows: slice) -> Dataset:
        out = StreamDataset.__new__(StreamDataset)
        out._file = self._file
        out._assign(self.images.view(rows), self.labels[rows], self.name, self.num_classes)
        return out

    def close(self) -> None:
        self._file.close()

    def __repr__(self) -> str:
        return f"Stream{super().__repr__()}"


def prefetched(read: Callable[[Any], Any], keys: Iterable[Any], depth: int = 2) -> Iterator[Any]:
    """read(key) for each key in order, computed up to `depth` keys ahead in a background thread.

    An exception in `read` is raised where its result would have come. Closing the iterator (or
    dropping it) stops the thread after the read in progress."""
    results: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            for key in keys:
                item = (True, read(key))
                while not stop.is_set():
                    try:
                        results.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            results.put((False, exc))
            return
        results.put((True, done))

    thread = threading.Thread(target=work, name="dualnet-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = results.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
