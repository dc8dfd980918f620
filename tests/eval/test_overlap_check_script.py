"""scripts/overlap_check.py (evaluation people found among the training identities) and the review rows of
scripts/bench_breakdown.py: the nearest-identity search against brute force, and an end-to-end run where an
evaluation person is a copy of a training person."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import bench_breakdown  # noqa: E402
import overlap_check  # noqa: E402


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_nearest_matches_brute_force_and_honours_exclusions():
    rng = np.random.default_rng(0)
    Q = _unit(rng.normal(size=(37, 8)))
    R = _unit(rng.normal(size=(50, 8)))
    exclude = rng.integers(-1, 50, 37)
    idx, dist = overlap_check.nearest(Q, R, exclude=exclude, k=3, chunk=7)
    for q in range(37):
        d = np.linalg.norm(R - Q[q], axis=1)
        if exclude[q] >= 0:
            d[exclude[q]] = np.inf
        want = np.argsort(d)[:3]
        assert idx[q].tolist() == want.tolist()
        np.testing.assert_allclose(dist[q], d[want], atol=1e-5)


def test_sample_per_class_caps_each_class():
    labels = np.array([2, 0, 2, 2, 1, 2, 0, 2, 2])
    pick = overlap_check.sample_per_class(labels, 3, np.random.default_rng(1))
    assert sorted(pick) == [0, 1, 2]
    assert [len(pick[c]) for c in (0, 1, 2)] == [2, 1, 3]
    for c, rows in pick.items():
        assert (labels[rows] == c).all() and len(set(rows.tolist())) == len(rows)


def _pack(path, people):
    from iznet.data.pack import pack_images

    items = [(f"{name}/{j}.jpg", k, img) for k, (name, imgs) in enumerate(people) for j, img in enumerate(imgs)]
    pack_images(items, path, 32, classes=[name for name, _ in people], quality=95)


def test_a_copied_person_is_found_and_drawn(tmp_path):
    rng = np.random.default_rng(3)

    def person():  # one base picture and noisy copies: a "person" the raw-pixel embedder recognises
        base = rng.integers(0, 255, (32, 32, 3))
        return [np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8) for _ in range(4)]

    people = [(f"t{i}", person()) for i in range(5)]
    _pack(tmp_path / "train.pt", people)
    _pack(tmp_path / "eval.pt", [("copy_of_t3", people[3][1]), ("stranger", person())])
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(SCRIPTS / "overlap_check.py"), "-e", "raw:32", "--train",
                        str(tmp_path / "train.pt"), "--eval", f"ev={tmp_path / 'eval.pt'}", "--per", "4",
                        "--top", "2", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "overlap.json").read_text())
    first = res["people"][0]
    assert (first["person"], first["train"]) == ("copy_of_t3", "t3") and first["distance"] < 1e-3
    assert res["people"][1]["distance"] > 0.3
    assert (out / "sheet_all_top_01.png").is_file() and (out / "cache.npz").is_file()
    # a second run draws from the cache: same answer
    r2 = subprocess.run(r.args, capture_output=True, text=True, timeout=300)
    assert r2.returncode == 0 and json.loads((out / "overlap.json").read_text())["people"] == res["people"]


def test_bad_eval_spec_is_named(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPTS / "overlap_check.py"), "--train", str(tmp_path / "t.pt"),
                        "--eval", "nothing-here", "--out", str(tmp_path / "o")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0 and "--eval 'nothing-here'" in r.stderr and "Traceback" not in r.stderr


def test_breakdown_splits_reviewed_people(tmp_path):
    review = tmp_path / "review.csv"
    with open(review, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["person", "in_training", "training_identity", "distance", "how_found"])
        w.writerow(["A", "yes", "x", "0.5", "nearest"])
        w.writerow(["B", "not found", "", "0.9", ""])
    bench = {"systems": {"s": {"people": {
        "A": {"correct": 3, "wrong": 1, "nearest_correct": 4, "n": 4},
        "B": {"correct": 1, "wrong": 0, "nearest_correct": 1, "n": 2},
        "C": {"correct": 2, "wrong": 0, "nearest_correct": 2, "n": 2}}}}}
    ident = tmp_path / "identities.csv"
    ident.write_text("identity,name,gender,group,sources,images,part\n")
    rows = bench_breakdown.breakdown(bench, bench_breakdown.populations(ident),
                                     bench_breakdown.review_groups(review))
    by = {(r["by"], r["group"]): r for r in rows}
    assert by[("training", "in training")]["right"] == 0.75 and by[("training", "in training")]["people"] == 1
    assert by[("training", "not found in training")]["pictures"] == 2
    assert by[("training", "not reviewed")]["people"] == 1
    assert by[("all", "all")]["pictures"] == 8
