"""An image folder decoded once into a cached HDF5 file (dualnet.data.folder_cache) and read by load."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest
from photo_folders import make_folder, picture, save

import dualnet as dn
from dualnet.data.folder_cache import FolderOptions, convert_folder, folder_cache
from dualnet.errors import DataError

SMALL = FolderOptions((12, 10))


def test_a_folder_loads_as_train_val_test_with_its_class_names_and_preparation(tmp_path, cache):
    root = make_folder(tmp_path / "photos", per_class=10, classes=("cat", "dog", "owl"))
    notes = []
    path = folder_cache(root, SMALL, report=notes.append)
    assert path.parent == cache / "folders"
    assert any("skipped 1 unreadable image(s) of 32: cat/broken.jpg" in n for n in notes)
    assert any("ignored 1 file(s) that are not images" in n for n in notes)
    train = dn.data.load(root, "train", image_size=(12, 10))
    test = dn.data.load(root, "test", image_size=(12, 10))
    val = dn.data.load(root, "val", image_size=(12, 10))
    assert train.shape == (3, 12, 10) and train.num_classes == 3
    # 31 readable photos (11 cats with the rotated one, the broken one skipped; 10 dogs, 10 owls)
    assert np.bincount(test.labels).tolist() == [2, 2, 2]
    assert len(train) + len(val) == 31 - 6
    meta = dn.data.source_metadata(root, image_size=(12, 10))
    assert meta["class_names"] == ["cat", "dog", "owl"]
    assert meta["image_preparation"]["size"] == [12, 10] and meta["image_preparation"]["channels"] == 3


def test_the_cache_is_reused_while_the_folder_is_unchanged_and_rebuilt_when_a_file_changes(tmp_path, cache):
    root = make_folder(tmp_path / "photos", per_class=4, extras=False)
    notes: list[str] = []
    first = folder_cache(root, SMALL, report=notes.append)
    made = first.stat().st_mtime_ns
    assert folder_cache(root, SMALL, report=notes.append) == first and first.stat().st_mtime_ns == made
    assert len(notes) == 1  # one conversion
    save(root / "dog" / "dog_01.png", picture("cat", 20, 20, seed=7))  # a file replaced by other content
    os.utime(root / "dog" / "dog_01.png", ns=(10**18, 10**18))
    second = folder_cache(root, SMALL, report=notes.append)
    assert second != first and not first.exists() and len(notes) == 2
    other = folder_cache(root, FolderOptions((8, 8)), report=None)  # other options: a second cache beside it
    assert other != second and second.exists()


def test_unreadable_images_are_skipped_or_with_strict_refused(tmp_path, cache):
    root = make_folder(tmp_path / "photos", per_class=3)
    with pytest.raises(DataError, match=r"cat/broken.jpg: .*--strict refuses unreadable images"):
        folder_cache(root, SMALL, strict=True, report=None)
    assert not any((cache / "folders").glob("*"))  # the refused conversion left nothing behind
    folder_cache(root, SMALL, report=None)
    with pytest.raises(DataError, match=r"1 unreadable image\(s\) \(cat/broken.jpg"):
        folder_cache(root, SMALL, strict=True, report=None)  # the cache made without --strict is no way round


def test_an_all_gray_folder_is_one_channel_and_one_colour_photo_makes_it_rgb(tmp_path, cache):
    root = make_folder(tmp_path / "photos", per_class=3, gray_only=True, extras=False)
    gray = dn.data.load(root, "all-train", image_size=(12, 10))
    assert gray.shape == (1, 12, 10)
    forced = dn.data.load(root, "all-train", image_size=(12, 10), channels=3)
    assert forced.shape == (3, 12, 10) and np.array_equal(forced.images[:, :1], gray.images)
    save(root / "dog" / "colour.png", picture("dog", 20, 20, seed=8))
    assert dn.data.load(root, "all-train", image_size=(12, 10)).shape == (3, 12, 10)
    assert dn.data.load(root, "all-train", image_size=(12, 10), channels=1).shape == (1, 12, 10)


def test_the_held_out_test_set_is_stratified_and_the_training_order_interleaves_the_classes(tmp_path, cache):
    root = make_folder(tmp_path / "photos", per_class=20, classes=("cat", "dog", "owl"), extras=False)
    train = dn.data.load(root, "all-train", image_size=(8, 8), test_fraction=0.25)
    test = dn.data.load(root, "test", image_size=(8, 8), test_fraction=0.25)
    assert np.bincount(test.labels).tolist() == [5, 5, 5]
    for tail in (3, 9, 15):  # any trailing stretch (a validation split) holds each class within one image
        counts = np.bincount(train.labels[-tail:], minlength=3)
        assert counts.max() - counts.min() <= 1
    assert dn.data.load_test_or_none(root, image_size=(8, 8), test_fraction=0.0) is None


def test_a_val_folder_becomes_the_validation_split(tmp_path, cache):
    root = make_folder(tmp_path / "photos", per_class=6, layout="split", extras=False)
    for i in range(3):
        save(root / "val" / "cat" / f"v{i}.png", picture("cat", 15, 15, seed=20 + i))
    val = dn.data.load(root, "val", image_size=(8, 8))
    assert val.labels.tolist() == [0, 0, 0] and len(dn.data.load(root, "train", image_size=(8, 8))) == 8
    assert len(dn.data.load(root, "test", image_size=(8, 8))) == 4


def test_two_processes_convert_to_the_same_bytes_as_one(tmp_path, cache):
    root = make_folder(tmp_path / "photos", per_class=40, extras=True)  # >= 64 images: the workers start
    a = convert_folder(root, tmp_path / "one.h5", SMALL, processes=1, report=None)
    b = convert_folder(root, tmp_path / "two.h5", SMALL, processes=2, report=None)
    assert a["skipped"] == b["skipped"] == 1
    with h5py.File(tmp_path / "one.h5") as f, h5py.File(tmp_path / "two.h5") as g:
        for name in ("train/images", "train/labels", "test/images", "test/labels"):
            assert np.array_equal(f[name][()], g[name][()]), name
        assert f["train/images"].dtype == np.uint8 and f["train/images"].chunks is not None
        assert json.loads(f.attrs["class_names"]) == ["cat", "dog"]


def test_an_interrupted_conversion_leaves_no_file(tmp_path, cache):
    root = make_folder(tmp_path / "photos", per_class=6, extras=False)

    def interrupt(done, total):
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        folder_cache(root, SMALL, progress=interrupt, report=None)
    assert list((cache / "folders").iterdir()) == []
    out = tmp_path / "kept.h5"
    out.write_bytes(b"the previous file")
    with pytest.raises(KeyboardInterrupt):
        convert_folder(root, out, SMALL, progress=interrupt, report=None)
    assert out.read_bytes() == b"the previous file" and sorted(p.name for p in tmp_path.iterdir()) == [
        "kept.h5", "photos", "xdg"]


def test_a_streamed_folder_reads_the_same_images(tmp_path, cache):
    root = make_folder(tmp_path / "photos", per_class=5, extras=False)
    loaded = dn.data.load(root, "train", image_size=(8, 8))
    streamed = dn.data.load(root, "train", image_size=(8, 8), stream=True)
    assert isinstance(streamed, dn.data.StreamDataset)
    assert np.array_equal(streamed.images[:], loaded.images) and np.array_equal(streamed.labels, loaded.labels)
    streamed.close()
