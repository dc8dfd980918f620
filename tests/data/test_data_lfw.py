"""LFW: pair files in both formats, the image tree, person-disjoint folds, identity-disjoint training splits."""

from __future__ import annotations

import pytest

from data_fixtures import LFW_TINY, make_lfw_tiny
from iznet.data.lfw import (LFW, Pair, find_lfw, load_view1, load_view2, people_in_pairs, read_pairs,
                            training_people, view1_train_people, view2_train_people)
from iznet.errors import DataError


def _assert_folds_person_disjoint(folds):
    people = [people_in_pairs(f) for f in folds]
    for i in range(len(folds)):
        for j in range(i + 1, len(folds)):
            assert not people[i] & people[j], f"folds {i} and {j} share {sorted(people[i] & people[j])[:3]}"


def _assert_same_then_different(fold, n):
    assert len(fold) == 2 * n
    assert all(p.same and p.name1 == p.name2 for p in fold[:n])
    assert all(not p.same and p.name1 != p.name2 for p in fold[n:])


# ---------------------------------------------------------------- tiny committed fixture

def test_read_pairs_view2_format():
    folds = read_pairs(LFW_TINY / "pairs.txt")
    assert len(folds) == 2
    for f in folds:
        _assert_same_then_different(f, 2)
    assert folds[0][0] == Pair("Alice_Ames", 1, "Alice_Ames", 2, True)
    assert folds[1][3] == Pair("Hank_Hill", 1, "Finn_Ford", 2, False)
    _assert_folds_person_disjoint(folds)


def test_read_pairs_view1_format():
    folds = read_pairs(LFW_TINY / "pairsDevTest.txt")
    assert len(folds) == 1
    _assert_same_then_different(folds[0], 2)
    assert folds[0][2] == Pair("Hank_Hill", 1, "Dana_Dunn", 1, False)


@pytest.mark.parametrize("text,lineno,msg", [
    ("", None, "empty pair file"),
    ("ten 300\n", 1, "bad header"),
    ("1 1\nA 1 2\n", None, "announces 2 pair lines, found 1"),
    ("1 1\nA 1 2\nB 1 C\n", 3, "same-person line where a different-person"),  # a 3-field line too late
    ("1 1\nA 1 2\nB 1 2 3 4\n", 3, "malformed pair line"),   # 5 fields
    ("1 1\nA 1 B 2\nA 1 2\n", 2, "different-person line where a same-person"),
    ("1 1\nA x 2\nA 1 B 2\n", 2, "must be integers"),
    ("1 1\nA 0 2\nA 1 B 2\n", 2, "start at 1"),
    ("1 1\nA 1 2\nA 1 A 2\n", 3, "names the same person"),
])
def test_read_pairs_malformed(tmp_path, text, lineno, msg):
    p = tmp_path / "bad_pairs.txt"
    p.write_text(text)
    with pytest.raises(DataError, match=msg) as e:
        read_pairs(p)
    where = f"{p}:{lineno}:" if lineno else f"{p}:"
    assert where in str(e.value)


def test_read_pairs_missing_and_trailing_blank(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_pairs(tmp_path / "nope.txt")
    p = tmp_path / "ok.txt"
    p.write_text("1\nA 1 2\nA 1 B 1\n\n\n")
    assert len(read_pairs(p)[0]) == 2


def test_lfw_tree_and_paths(tmp_path):
    root = make_lfw_tiny(tmp_path / "lfw")
    lfw = LFW(root)
    assert lfw.people["Alice_Ames"] == 3 and lfw.people["Ivy_Ives"] == 1
    assert list(lfw.people) == sorted(lfw.people) and len(lfw.people) == 9 and lfw.num_images == 14
    assert lfw.image_path("Bob_Burns", 2) == root / "images" / "Bob_Burns" / "Bob_Burns_0002.jpg"
    assert lfw.relpath("Bob_Burns", 2) == "Bob_Burns/Bob_Burns_0002.jpg"
    with pytest.raises(DataError, match="not a person"):
        lfw.image_path("Nobody", 1)
    with pytest.raises(DataError, match="images 1..2"):
        lfw.image_path("Bob_Burns", 3)
    lfw.check_pairs(read_pairs(root / "pairs.txt"))
    ds = lfw.identity_folder()
    assert len(ds) == 14 and ds.classes == list(lfw.people)
    assert ds.relpaths()[0] == "Alice_Ames/Alice_Ames_0001.jpg"
    assert ds[0][0].shape == (50, 50, 3)
    sub = lfw.identity_folder(people=["Erin_Eads", "Bob_Burns"])
    assert sub.classes == ["Bob_Burns", "Erin_Eads"] and len(sub) == 4
    assert lfw.identity_folder(min_images=2).classes == ["Alice_Ames", "Bob_Burns", "Erin_Eads", "Finn_Ford"]
    with pytest.raises(DataError, match="unknown LFW people"):
        lfw.identity_folder(people=["Zed"])
    assert find_lfw(tmp_path) == root and find_lfw(root) == root
    with pytest.raises(DataError, match="no LFW folder"):
        find_lfw(tmp_path / "lfw" / "images")
    with pytest.raises(DataError, match="not an LFW folder"):
        LFW(tmp_path)


def test_check_pairs_catches_missing_images(tmp_path):
    root = make_lfw_tiny(tmp_path / "lfw")
    (root / "images" / "Alice_Ames" / "Alice_Ames_0003.jpg").unlink()
    with pytest.raises(DataError, match="Alice_Ames has images 1..2"):
        LFW(root).check_pairs(read_pairs(root / "pairs.txt"))


def test_view_loaders_check_shape(tmp_path):
    root = make_lfw_tiny(tmp_path / "lfw")
    with pytest.raises(DataError, match="expected 10 folds of 600"):
        load_view2(root)  # the tiny file has 2 folds of 4
    train, test = load_view1(root)
    assert len(train) == 4 and len(test) == 4


def test_identity_disjoint_splits(tmp_path):
    root = make_lfw_tiny(tmp_path / "lfw")
    lfw = LFW(root)
    folds = read_pairs(root / "pairs.txt")
    for k, fold in enumerate(folds):
        train = view2_train_people(lfw, folds, k)
        assert not set(train) & people_in_pairs(fold)
        assert set(train) | people_in_pairs(fold) == set(lfw.people)
        assert train == sorted(train)
    assert view2_train_people(lfw, folds, 0) == ["Erin_Eads", "Finn_Ford", "Gail_Gray", "Hank_Hill", "Ivy_Ives"]
    _, test = load_view1(root)
    v1 = view1_train_people(lfw, test)
    assert v1 == ["Alice_Ames", "Carl_Cole", "Erin_Eads", "Gail_Gray", "Ivy_Ives"]
    assert training_people(lfw, folds) == ["Ivy_Ives"]  # a list of folds excludes everyone in any fold
    with pytest.raises(DataError, match="fold 2 does not exist"):
        view2_train_people(lfw, folds, 2)


# ---------------------------------------------------------------- the real files (../shared/data)

@pytest.fixture(scope="module")
def real_lfw(shared_data):
    root = shared_data / "lfw"
    if not (root / "pairs.txt").is_file():
        pytest.skip(f"{root}/pairs.txt is not present")
    return root


@pytest.mark.shared
def test_real_view2(real_lfw):
    folds = load_view2(real_lfw)
    assert len(folds) == 10 and sum(len(f) for f in folds) == 6000
    for f in folds:
        _assert_same_then_different(f, 300)
    _assert_folds_person_disjoint(folds)


@pytest.mark.shared
def test_real_view1_and_splits(real_lfw):
    train, test = load_view1(real_lfw)
    assert len(train) == 2200 and len(test) == 1000
    _assert_same_then_different(train, 1100)
    _assert_same_then_different(test, 500)
    lfw = LFW(real_lfw)
    assert len(lfw.people) == 5749 and lfw.num_images == 13233
    lfw.check_pairs(test)
    v1 = set(view1_train_people(lfw, test))
    assert v1 and not v1 & people_in_pairs(test)
    folds = load_view2(real_lfw)
    lfw.check_pairs(folds)
    for k in (0, 9):
        train_k = set(view2_train_people(lfw, folds, k))
        assert not train_k & people_in_pairs(folds[k])
        assert len(train_k) + len(people_in_pairs(folds[k])) == 5749
