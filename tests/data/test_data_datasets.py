"""IdentityFolder: scanning, labels, errors, subsets and the first-k enrolment split."""

from __future__ import annotations

import numpy as np
import pytest

from data_fixtures import make_identity_folder, smooth_image, write_jpeg
from iznet.data.datasets import IdentityFolder
from iznet.errors import DataError, ImageError


@pytest.fixture()
def folder(tmp_path):
    return make_identity_folder(tmp_path / "people", {"carol": 1, "alice": 3, "bob": 2}, (12, 10))


def test_scan_labels_and_items(folder):
    ds = IdentityFolder(folder)
    assert ds.root == folder
    assert ds.classes == ["alice", "bob", "carol"]
    assert len(ds) == 6
    assert ds.labels.dtype == np.int64
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 2]
    assert [p.parent.name for p in ds.paths] == ["alice"] * 3 + ["bob"] * 2 + ["carol"]
    assert ds.paths == sorted(ds.paths)
    img, label = ds[3]
    assert img.shape == (12, 10, 3) and img.dtype == np.uint8 and label == 1
    assert ds[-1][1] == 2
    with pytest.raises(IndexError):
        ds[6]
    assert ds.counts().tolist() == [3, 2, 1]
    assert ds.relpaths()[0] == "alice/alice_0001.jpg"


def test_min_images_drops_people(folder):
    ds = IdentityFolder(folder, min_images=2)
    assert ds.classes == ["alice", "bob"] and len(ds) == 5
    with pytest.raises(DataError, match="at least 4 images"):
        IdentityFolder(folder, min_images=4)


def test_errors(tmp_path, folder):
    with pytest.raises(DataError, match="does not exist"):
        IdentityFolder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no person sub-folders"):
        IdentityFolder(tmp_path / "empty")
    f = write_jpeg(tmp_path / "lone.jpg", smooth_image(4, 4, 0))
    with pytest.raises(DataError, match="not a folder"):
        IdentityFolder(f)
    (folder / "dave").mkdir()
    (folder / "dave" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="dave holds no images"):
        IdentityFolder(folder)


def test_stray_and_hidden_entries_are_ignored(folder):
    write_jpeg(folder / "stray.jpg", smooth_image(4, 4, 0))
    (folder / ".thumbs").mkdir()
    ds = IdentityFolder(folder)
    assert ds.classes == ["alice", "bob", "carol"] and len(ds) == 6


def test_unreadable_file_surfaces_on_load(folder):
    (folder / "bob" / "bob_0003.jpg").write_text("broken")
    ds = IdentityFolder(folder)
    assert len(ds) == 7
    with pytest.raises(ImageError, match="bob_0003.jpg"):
        ds[5]


def test_subset_keeps_label_space(folder):
    ds = IdentityFolder(folder)
    sub = ds.subset([5, 0, 3])
    assert isinstance(sub, IdentityFolder)
    assert sub.classes == ds.classes
    assert sub.labels.tolist() == [2, 0, 1]
    assert sub.paths == [ds.paths[5], ds.paths[0], ds.paths[3]]
    assert sub[0][1] == 2
    assert len(ds.subset(np.array([], dtype=np.int64))) == 0
    with pytest.raises(IndexError):
        ds.subset([6])


def test_first_k_split(folder):
    ds = IdentityFolder(folder)  # alice 0,1,2 ; bob 3,4 ; carol 5
    enrol, probe = ds.first_k_split(1)
    assert enrol.tolist() == [0, 3, 5] and probe.tolist() == [1, 2, 4]
    enrol, probe = ds.first_k_split(2)
    assert enrol.tolist() == [0, 1, 3, 4, 5] and probe.tolist() == [2]
    enrol, probe = ds.first_k_split(5)  # everyone has <= k images: enrolment only
    assert enrol.tolist() == list(range(6)) and probe.size == 0
    assert enrol.dtype == np.int64 and probe.dtype == np.int64
    with pytest.raises(DataError, match="k"):
        ds.first_k_split(0)


def test_first_k_split_follows_sorted_paths_not_storage_order(folder):
    ds = IdentityFolder(folder)
    shuffled = ds.subset([2, 4, 0, 5, 1, 3])  # alice_3, bob_2, alice_1, carol_1, alice_2, bob_1
    enrol, probe = shuffled.first_k_split(1)
    assert sorted(shuffled.paths[i].name for i in enrol) == ["alice_0001.jpg", "bob_0001.jpg", "carol_0001.jpg"]
    assert sorted(shuffled.paths[i].name for i in probe) == ["alice_0002.jpg", "alice_0003.jpg", "bob_0002.jpg"]
