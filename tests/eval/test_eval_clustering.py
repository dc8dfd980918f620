"""Clustering: the scores against loops over pairs and faces; the three methods on separable clusters."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from iznet.eval.clustering import clustering_scores
from iznet.recognize.cluster import ClusterError, cluster_faces


def _brute(pred, true):
    n = len(pred)
    pid = [p if p != -1 else f"lone{i}" for i, p in enumerate(pred)]
    tp = sum(1 for i, j in itertools.combinations(range(n), 2) if pid[i] == pid[j] and true[i] == true[j])
    same_c = sum(1 for i, j in itertools.combinations(range(n), 2) if pid[i] == pid[j])
    same_t = sum(1 for i, j in itertools.combinations(range(n), 2) if true[i] == true[j])
    bp = np.mean([sum(pid[j] == pid[i] and true[j] == true[i] for j in range(n)) / sum(pid[j] == pid[i] for j in range(n))
                  for i in range(n)])
    br = np.mean([sum(pid[j] == pid[i] and true[j] == true[i] for j in range(n)) / sum(true[j] == true[i] for j in range(n))
                  for i in range(n)])
    return tp / same_c if same_c else 1.0, tp / same_t if same_t else 1.0, bp, br


@pytest.mark.parametrize("seed", range(5))
def test_scores_match_loops(seed):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 5, 40)
    pred = rng.integers(-1, 6, 40)
    s = clustering_scores(pred, true)
    p, r, bp, br = _brute(pred.tolist(), true.tolist())
    assert s["pairwise_precision"] == pytest.approx(p) and s["pairwise_recall"] == pytest.approx(r)
    assert s["bcubed_precision"] == pytest.approx(bp) and s["bcubed_recall"] == pytest.approx(br)
    assert s["pairwise_f"] == pytest.approx(2 * p * r / (p + r))


def test_perfect_and_all_in_one():
    true = np.repeat(np.arange(4), 5)
    assert clustering_scores(true, true)["bcubed_f"] == 1.0 == clustering_scores(true, true)["pairwise_f"]
    one = clustering_scores(np.zeros(20, int), true)
    assert one["pairwise_recall"] == 1.0 and one["pairwise_precision"] == pytest.approx(40 / 190)


@pytest.mark.parametrize("method", ["agglomerative", "chinese-whispers", "kmeans"])
def test_methods_find_separable_people(method):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 16))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    true = np.repeat(np.arange(6), 7)
    E = centres[true] + rng.normal(0, 0.03, (42, 16))
    E = np.vstack([E, rng.normal(size=(3, 16))])  # three strangers seen once
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    labels = cluster_faces(E, method, threshold=0.6, n_clusters=6 if method == "kmeans" else None)
    s = clustering_scores(labels[:42], true)
    assert s["pairwise_precision"] == 1.0 and s["pairwise_recall"] == 1.0
    if method != "kmeans":  # k-means has no way to leave a face out
        assert (labels[42:] == -1).all()
    sizes = np.bincount(labels[labels >= 0])
    assert (np.diff(sizes) <= 0).all()  # numbered by decreasing size


def test_bad_settings():
    E = np.eye(3)
    with pytest.raises(ClusterError, match="choose one of"):
        cluster_faces(E, "dbscan", threshold=0.5)
    with pytest.raises(ClusterError, match="threshold"):
        cluster_faces(E, "agglomerative")
    with pytest.raises(ClusterError, match="number of people"):
        cluster_faces(E, "kmeans")
    assert cluster_faces(np.zeros((0, 3)), threshold=0.5).shape == (0,)
    assert cluster_faces(np.eye(3)[:1], threshold=0.5).tolist() == [-1]


def test_default_threshold_prefers_the_shipped_clustering_cut_for_agglomerative_only():
    from types import SimpleNamespace

    from iznet.recognize.cluster import default_threshold

    both = SimpleNamespace(calibrated_threshold=0.81, calibration={"threshold": 0.81, "cluster_threshold": 0.925})
    assert default_threshold(both, "agglomerative") == 0.925
    assert default_threshold(both, "chinese-whispers") == 0.81  # chosen for average linkage only
    old = SimpleNamespace(calibrated_threshold=0.81, calibration={"threshold": 0.81})
    assert default_threshold(old) == 0.81
    bad = SimpleNamespace(calibrated_threshold=0.81, calibration={"cluster_threshold": float("nan")})
    assert default_threshold(bad) == 0.81
    assert default_threshold(SimpleNamespace()) is None


def test_the_end_to_end_outcome_of_a_cluster_report():
    """scripts/cluster_outcome.py: a photo's most confident face is its folder's person, other faces are strangers,
    and a photo with no face found counts as an unsorted face of its person over every photo."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "cluster_outcome.py"
    spec = importlib.util.spec_from_file_location("cluster_outcome_script", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    faces = [{"photo": "d/ann/1.jpg", "face": 0, "score": 0.9, "cluster": 0},
             {"photo": "d/ann/1.jpg", "face": 1, "score": 0.4, "cluster": -1},  # a passer-by, unsorted
             {"photo": "d/ann/2.jpg", "face": 0, "score": 0.8, "cluster": 0},
             {"photo": "d/bob/1.jpg", "face": 0, "score": 0.7, "cluster": 1},
             {"photo": "d/bob/2.jpg", "face": 0, "score": 0.6, "cluster": 1}]
    report = {"faces_list": faces, "photos": 5, "skipped": [{"photo": "d/bob/3.jpg", "reason": "no face found"}],
              "threshold": 0.9, "method": "agglomerative", "embedder": "x", "headshot_faces": 0}
    res = mod.outcome(report)
    assert res["photos_with_a_face"] == 4 and res["photos_missed"] == 1 and res["extra_faces"] == 1
    assert res["found"]["bcubed_f"] == pytest.approx(1.0)  # the stranger alone, each person one cluster
    assert res["every_photo"]["bcubed_precision"] == pytest.approx(1.0)
    # bob's missed photo: his three faces recall 2/3, 2/3, 1/3; the six faces' mean recall
    assert res["every_photo"]["bcubed_recall"] == pytest.approx((1 + 1 + 1 + 2 / 3 + 2 / 3 + 1 / 3) / 6)
