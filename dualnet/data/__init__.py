"""Datasets: the bundled MNIST, any directory of IDX files or HDF5 file, batching, augmentation.

Everything here is NumPy, whatever the active device: batches move to the device in the
training loop, so loading and shuffling never depend on CuPy.

    train = dn.data.load("mnist", "train")      # Dataset: images float32 (N, C, H, W), labels int64 (N,)
    for x, y in dn.data.batches(train, 64, seed=0, epoch=0): ...

Modules: sources (`load`, `load_mnist`: which reader a source needs), digits_source (the 8x8
digits), dataset (`Dataset` and the checks every reader shares), idx_source and hdf5 (the two
readers), idx (the IDX format), limits (how much an HDF5 dataset may make a reader allocate),
batching (epoch order, batches, shifts), augment (crop, flip), normalize (per-channel
normalization), streaming (HDF5 splits read batch by batch), images (single PNG/PGM/.npy pictures
for prediction); image folders: folders (layout and fingerprint), photo (one photo's preparation,
shared with predict), folder_cache (decoded once into a cached HDF5 file), describe (class names,
`dualnet data info`), atomic and locations (how and where derived files are written).
"""

from __future__ import annotations

from .augment import augment_batch, random_crop, random_flip
from .batching import batches, epoch_order, random_shift, shift_images
from .dataset import MAX_CLASSES, Dataset, MissingTestSplit
from .describe import describe, source_metadata
from .digits_source import bundled_digits_dir
from .folder_cache import DEFAULT_IMAGE_SIZE, DEFAULT_TEST_FRACTION, FolderOptions, convert_folder, folder_cache
from .normalize import channel_stats, check_normalization, model_normalization, normalize
from .sources import NAMED_SOURCES, SPLITS, bundled_mnist_dir, load, load_mnist, load_test_or_none
from .streaming import StreamDataset, prefetched

__all__ = [
    "DEFAULT_IMAGE_SIZE", "DEFAULT_TEST_FRACTION", "FolderOptions", "convert_folder", "describe", "folder_cache",
    "source_metadata", "MAX_CLASSES", "NAMED_SOURCES", "SPLITS", "Dataset", "MissingTestSplit", "augment_batch",
    "batches",
    "bundled_digits_dir", "bundled_mnist_dir", "channel_stats", "check_normalization", "epoch_order", "load",
    "load_mnist", "load_test_or_none", "model_normalization", "normalize", "random_crop", "random_flip",
    "prefetched", "random_shift", "shift_images", "StreamDataset",
]
