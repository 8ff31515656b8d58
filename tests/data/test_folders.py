"""Scanning an image folder (dualnet.data.folders): layouts, classes, skipped files and links, refusals."""

from __future__ import annotations

import os
import re

import pytest
from photo_folders import make_folder, picture, save

from dualnet.data.folders import looks_like_image_folder, scan_folder
from dualnet.errors import DataError


def test_class_ids_follow_sorted_folder_names_and_odd_files_are_skipped(tmp_path):
    root = make_folder(tmp_path / "photos", per_class=3, classes=("zebra", "ant"))
    scan = scan_folder(root)
    assert scan.class_names == ("ant", "zebra")
    names = {name: label for name, label in scan.parts["all"]}
    assert names["ant/ant_00.jpg"] == 0 and names["zebra/zebra_02.jpg"] == 1
    # the corrupt JPEG is an image file to try (conversion skips it); text and hidden files are not
    assert "zebra/broken.jpg" in names and "zebra/rotated.jpg" in names
    assert not any(n.endswith((".txt", ".hidden.png")) for n in names)
    assert scan.other_files == ["zebra/notes.txt"]
    assert looks_like_image_folder(root)


def test_the_train_test_val_layout_keeps_its_parts(tmp_path):
    root = make_folder(tmp_path / "p", per_class=6, layout="split", extras=False)
    save(root / "val" / "dog" / "v.png", picture("dog", 20, 20, seed=5))
    scan = scan_folder(root)
    assert set(scan.parts) == {"train", "test", "val"} and scan.class_names == ("cat", "dog")
    assert scan.parts["val"] == [("val/dog/v.png", 1)]
    assert len(scan.parts["test"]) == 4 and len(scan.parts["train"]) == 8


def test_a_test_class_unknown_to_train_is_refused(tmp_path):
    root = make_folder(tmp_path / "p", per_class=6, layout="split", extras=False)
    save(root / "test" / "emu" / "e.png", picture("cat", 20, 20, seed=6))
    with pytest.raises(DataError, match="'emu' is not among the training classes"):
        scan_folder(root)


def test_the_fingerprint_changes_with_a_file_and_with_the_options(tmp_path):
    root = make_folder(tmp_path / "p", per_class=2, extras=False)
    first = scan_folder(root).digest({"size": [8, 8]})
    assert scan_folder(root).digest({"size": [8, 8]}) == first
    assert scan_folder(root).digest({"size": [8, 9]}) != first
    os.utime(root / "cat" / "cat_00.jpg", ns=(1, 1))
    assert scan_folder(root).digest({"size": [8, 8]}) != first


def test_links_out_of_the_folder_are_not_followed_and_links_inside_are(tmp_path):
    outside = make_folder(tmp_path / "elsewhere", per_class=2, extras=False)
    root = make_folder(tmp_path / "p", per_class=2, extras=False)
    os.symlink(outside / "cat" / "cat_00.jpg", root / "cat" / "stolen.jpg")
    os.symlink(outside / "dog", root / "cat" / "more")
    os.symlink(root / "dog" / "dog_00.jpg", root / "cat" / "inside.jpg")
    os.symlink(root, root / "dog" / "loop")  # back to the root: read once, not forever
    scan = scan_folder(root)
    names = [n for n, _ in scan.parts["all"]]
    assert "cat/inside.jpg" in names and "cat/stolen.jpg" not in names
    assert not any(n.startswith("cat/more") for n in names)
    assert sorted(scan.outside_links) == ["cat/more", "cat/stolen.jpg"]


@pytest.mark.parametrize("case, message", [
    ("no subfolders", "no class subfolders"),
    ("one class", "only one class folder ('cat')"),
    ("empty class", "dog: no images in this class folder"),
    ("only text", "no images in this class folder"),
])
def test_folders_that_cannot_train_a_classifier_are_refused_in_one_line(tmp_path, case, message):
    root = tmp_path / "p"
    root.mkdir()
    if case == "no subfolders":
        save(root / "a.png", picture("cat", 9, 9, seed=1))
    else:
        save(root / "cat" / "a.png", picture("cat", 9, 9, seed=1))
    if case == "empty class":
        (root / "dog").mkdir()
    if case == "only text":
        (root / "dog").mkdir()
        (root / "dog" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=re.escape(message)) as info:
        scan_folder(root)
    assert "\n" not in str(info.value)
