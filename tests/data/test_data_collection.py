"""The training collection: hashing and duplicate search against brute force, curation and packs end to end
on synthetic identity folders with a stand-in teacher."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from iznet.data.align import TEMPLATE_112
from iznet.data.collection import (BuildConfig, OneEditIndex, SourceSpec, build_collection, near_duplicate_pairs,
                                   normalise_name, phash, pick_face, stable_share)
from iznet.data.pack import load_pack
from iznet.errors import DataError


def _brute_pairs(hashes, k):
    out = []
    for i in range(len(hashes)):
        for j in range(i + 1, len(hashes)):
            if bin(hashes[i] ^ hashes[j]).count("1") <= k:
                out.append((i, j))
    return out


@pytest.mark.parametrize("k", [0, 1, 3, 6, 10])
def test_near_duplicate_pairs_match_brute_force(k):
    rng = np.random.default_rng(k)
    base = [int(v) for v in rng.integers(0, 2**63, 40, dtype=np.int64)]
    hashes = list(base)
    for h in base[:25]:  # near copies: flip 0..12 random bits
        bits = rng.choice(64, rng.integers(0, 13), replace=False)
        for b in bits:
            h ^= 1 << int(b)
        hashes.append(h)
    got = near_duplicate_pairs(hashes, k)
    assert [tuple(p) for p in got.tolist()] == _brute_pairs(hashes, k)


def test_phash_is_stable_under_mild_changes_and_differs_between_images():
    rng = np.random.default_rng(0)
    a = cv2.GaussianBlur(rng.integers(0, 255, (64, 64)).astype(np.uint8), (7, 7), 2)
    b = cv2.GaussianBlur(rng.integers(0, 255, (64, 64)).astype(np.uint8), (7, 7), 2)
    a2 = np.clip(a.astype(int) + 6, 0, 255).astype(np.uint8)  # brighter
    _, enc = cv2.imencode(".jpg", a, [cv2.IMWRITE_JPEG_QUALITY, 60])
    a3 = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
    d = lambda x, y: bin(phash(x) ^ phash(y)).count("1")  # noqa: E731
    assert d(a, a2) <= 2 and d(a, a3) <= 4
    assert d(a, b) > 16


def test_names_and_stable_shares():
    assert normalise_name("Tom_Hanks") == normalise_name("tom  hanks") == normalise_name("Tóm Hanks") == "tom hanks"
    assert stable_share("fiw/F0001") == stable_share("fiw/F0001")
    shares = np.array([stable_share(f"p{i}") for i in range(4000)])
    assert 0 <= shares.min() and shares.max() < 1
    # uniform: chi-square over 10 bins, 9 degrees of freedom, p = 0.001 critical value 27.9
    counts = np.histogram(shares, bins=10, range=(0, 1))[0]
    assert ((counts - 400) ** 2 / 400).sum() < 27.9


def test_pick_face_prefers_the_central_confident_face():
    boxes = np.array([[0, 0, 30, 30], [40, 40, 70, 70], [45, 45, 60, 60], [90, 0, 100, 100]], float)
    scores = np.array([0.99, 0.9, 0.95, 0.99])
    assert pick_face(boxes, scores, (110, 110), 0.6) == 1
    assert pick_face(boxes, np.array([0.99, 0.5, 0.95, 0.99]), (110, 110), 0.6) == 2
    assert pick_face(boxes[[0, 3]], scores[[0, 3]], (110, 110), 0.6) is None


class FakeTeacher:
    """Says every picture holds one face whose landmarks are the template scaled to the picture;
    pictures that are all black hold none."""

    def detect_landmarks(self, image):
        h, w = image.shape[:2]
        if image.max() == 0:
            return np.zeros((0, 4)), np.zeros((0, 5, 2)), np.zeros(0)
        # the builder pads the picture by half its side on each side: the face is the middle half
        lm = TEMPLATE_112 / 112 * [w / 2, h / 2] + [w / 4, h / 4]
        return np.array([[w / 4, h / 4, 3 * w / 4, 3 * h / 4]]), lm[None], np.array([0.9])


def _texture(rng, n=96):
    return cv2.GaussianBlur(rng.integers(0, 255, (n, n, 3)).astype(np.uint8), (9, 9), 3)


def _write(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])


@pytest.fixture()
def folders(tmp_path):
    rng = np.random.default_rng(1)
    fam = tmp_path / "fam"
    shared = _texture(rng)
    for f in range(12):
        for m in range(2):
            for i in range(3):
                _write(fam / f"F{f:04d}_MID{m + 1}" / f"{i}.jpg", _texture(rng))
    # a duplicate within one identity, one photo under two identities, one picture without a face
    dup = _texture(rng)
    _write(fam / "F0000_MID1" / "dup_a.jpg", dup)
    _write(fam / "F0000_MID1" / "dup_b.jpg", np.clip(dup.astype(int) + 4, 0, 255).astype(np.uint8))
    _write(fam / "F0001_MID1" / "shared.jpg", shared)
    _write(fam / "F0002_MID1" / "shared.jpg", shared)
    _write(fam / "F0003_MID1" / "black.jpg", np.zeros((96, 96, 3), np.uint8))
    with open(fam / "people.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["folder", "name", "gender", "group"])
        for k in range(12):
            w.writerow([f"F{k:04d}_MID1", "ann", "f", f"F{k:04d}"])
            w.writerow([f"F{k:04d}_MID2", "bob", "m", f"F{k:04d}"])
    celeb = tmp_path / "celeb"
    for name in ("Ada_Lovelace", "Alan_Turing", "Grace_Hopper"):
        for i in range(4):
            _write(celeb / name / f"{i}.jpg", _texture(rng))
    other = tmp_path / "other"
    for i in range(2):
        _write(other / "ada lovelace" / f"x{i}.jpg", _texture(rng))
    _write(other / "Solo_Person" / "only.jpg", _texture(rng))
    return fam, celeb, other


def test_build_collection_end_to_end(folders, tmp_path):
    fam, celeb, other = folders
    sources = [SourceSpec("fam", fam), SourceSpec("celeb", celeb, named=True), SourceSpec("other", other, named=True)]
    cfg = BuildConfig(size=64, held_out_share=0.25, exclude_names=["Alan Turing"], min_eye_px=5)
    out = tmp_path / "coll"
    report = build_collection(sources, out, cfg, FakeTeacher)
    c = report["counts"]
    assert c["skipped"]["fam"] == {"no face found": 1}
    assert c["skipped"]["celeb"] == {"identity on an exclusion list": 4}
    assert c["duplicates_within_identity_dropped"] == 1
    assert c["duplicates_across_identities_dropped"] == 2
    assert c["merged_identities"] == ["ada lovelace"]  # "Ada_Lovelace" and "ada lovelace" are one person
    ids = {r["identity"]: r for r in csv.DictReader(open(out / "identities.csv"))}
    assert ids["ada lovelace"]["images"] == "6" and ids["ada lovelace"]["sources"] == "celeb+other"
    assert "alan turing" not in ids
    # both members of a family land on the same side of the split
    for k in range(12):
        parts = {ids[f"fam/F{k:04d}_MID{m}"]["part"] for m in (1, 2) if f"fam/F{k:04d}_MID{m}" in ids}
        assert len(parts) == 1
        assert parts == {"held-out" if stable_share(f"fam/F{k:04d}") < 0.25 else "train"}
    assert ids["fam/F0000_MID1"]["gender"] == "f" and ids["fam/F0000_MID2"]["gender"] == "m"
    total_kept = sum(s["kept"] for s in c["per_source"].values())
    assert c["train"]["images"] + c["held_out"]["images"] == total_kept
    # fam: 72 + 2 duplicates + 2 shared + 1 black - 1 faceless - 1 duplicate - 2 shared; celeb: 12 - 4; other: 3
    assert total_kept == 73 + 8 + 3
    for part, name in (("train", "train"), ("held_out", "heldout")):
        for crop in ("aligned", "box"):
            p = load_pack(out / f"{name}_{crop}64.pt")
            assert len(p) == c[part]["images"] and p.size == 64
            assert p.meta["crop"] == crop  # what a model trained on it records (iznet.data.align)
            assert set(p.classes) == {k for k, r in ids.items() if (r["part"] == "train") == (part == "train")}
    # a second build reuses the landmark cache and gives the same collection
    again = build_collection(sources, out, cfg, lambda: pytest.fail("the landmark cache was not used"))
    assert again["counts"] == c
    assert json.loads((out / "collection.json").read_text())["counts"] == c


def _osa_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (insert, delete, substitute, swap two neighbours), by dynamic programming."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def test_one_edit_index_matches_brute_force():
    rng = np.random.default_rng(5)
    alphabet = list("abc ")
    names = {"".join(rng.choice(alphabet, rng.integers(6, 11))) for _ in range(300)}
    index = OneEditIndex(names, min_len=8)
    long_names = [n for n in names if len(n) >= 8]
    queries = list(names) + ["".join(rng.choice(alphabet, rng.integers(5, 12))) for _ in range(600)]
    for q in queries:
        want = [n for n in long_names if _osa_distance(q, n) <= 1] if len(q) >= 7 else []
        got = index.match(q)
        assert (got is not None) == bool(want), q
        if got is not None:
            assert _osa_distance(q, got) <= 1
    real = OneEditIndex(["victoria beckham", "chris patt", "tom hanks"])
    assert real.match("victoria beckam") == "victoria beckham" and real.match("chris pratt") == "chris patt"
    assert real.match("tom hank") == "tom hanks" and real.match("ann") is None and real.match("tom banks x") is None


def test_build_drops_identity_keys_and_misspelt_names(folders, tmp_path):
    fam, celeb, other = folders
    sources = [SourceSpec("fam", fam), SourceSpec("celeb", celeb, named=True), SourceSpec("other", other, named=True)]
    cfg = BuildConfig(size=64, held_out_share=0.25, min_eye_px=5, exclude_names=["Alan Turring", "Grace Hoper"],
                      exclude_keys=["fam/F0005_MID2", "celeb/unused"], exclude_one_edit=True)
    report = build_collection(sources, tmp_path / "coll", cfg, FakeTeacher)
    c = report["counts"]
    assert c["skipped"]["fam"] == {"no face found": 1, "identity on the key exclusion list": 3}
    assert c["skipped"]["celeb"] == {"identity one edit from an excluded name": 8}
    ids = {r["identity"] for r in csv.DictReader(open(tmp_path / "coll" / "identities.csv"))}
    assert "fam/F0005_MID2" not in ids and "fam/F0005_MID1" in ids
    assert not ids & {"alan turing", "grace hopper"} and "ada lovelace" in ids
    assert report["config"]["exclude_keys"] == ["fam/F0005_MID2", "celeb/unused"]
    # without --exclude-one-edit the misspelt names miss
    cfg.exclude_one_edit = False
    again = build_collection(sources, tmp_path / "coll2", cfg, FakeTeacher)
    assert "identity one edit from an excluded name" not in again["counts"]["skipped"]["celeb"]


def test_build_collection_errors(tmp_path, folders):
    fam, _, _ = folders
    with pytest.raises(DataError, match="unique"):
        build_collection([SourceSpec("a", fam), SourceSpec("a", fam)], tmp_path / "o", BuildConfig(), FakeTeacher)
    with pytest.raises(DataError, match="not a folder"):
        build_collection([SourceSpec("a", tmp_path / "nope")], tmp_path / "o", BuildConfig(), FakeTeacher)
    with pytest.raises(DataError, match="unknown crop"):
        build_collection([SourceSpec("a", fam)], tmp_path / "o", BuildConfig(crops=("tight",)), FakeTeacher)


def test_cli_names_a_missing_key_list(tmp_path):
    import subprocess
    import sys

    (tmp_path / "src").mkdir()
    r = subprocess.run([sys.executable, "-m", "iznet", "data", "build", "--source", f"a={tmp_path / 'src'}", "--out",
                        str(tmp_path / "o"), "--teacher", str(tmp_path / "t.onnx"), "--exclude-keys",
                        str(tmp_path / "keys.txt")], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "--exclude-keys" in r.stderr and "keys.txt: no such file" in r.stderr
    assert "Traceback" not in r.stderr
