"""Numbers of the analysis tools on embedding sets whose answer is known."""

from __future__ import annotations

import json
from itertools import combinations
from math import comb

import numpy as np
import pytest

from iznet.eval.analysis import (
    AnalysisError,
    analyze_embeddings,
    box_stats,
    distance_table,
    draw_pairs,
    intra_distances,
    labels_from_names,
    person_centroids,
    person_medoids,
    summarize_run,
)


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _clusters(n_people=4, per=8, spread=0.05, dim=16, seed=0, centres=None):
    """Each person: a centre row plus ``per - 1`` noisy copies; rows are unit vectors."""
    rng = np.random.default_rng(seed)
    c = np.eye(dim)[:n_people] if centres is None else np.asarray(centres, dtype=np.float64)
    rows, labels = [], []
    for p, centre in enumerate(c):
        pts = centre + rng.normal(scale=spread, size=(per, c.shape[1]))
        pts[0] = centre
        rows.append(_unit(pts))
        labels += [p] * per
    return np.concatenate(rows), np.asarray(labels)


def test_separated_clusters_give_zero_errors_and_separated_verdicts():
    emb, lab = _clusters(n_people=5, per=10, spread=0.03)
    names = ["ann", "bo", "cy", "di", "ed"]
    r = analyze_embeddings(emb, lab, names, enroll=3)
    assert r.identification["rank1"] == {"nn": 1.0, "centroid": 1.0, "medoid": 1.0}
    assert r.identification["n_probes"] == 5 * 7
    assert r.verification["auc"] == 1.0 and r.verification["accuracy"] == 1.0
    assert [v.verdict for v in r.verdicts] == ["separated"] * 5
    assert r.n_separated == 5
    # orthogonal centres: medoids sqrt(2) apart, far beyond the tiny spread
    off = r.medoid_table[~np.eye(5, dtype=bool)]
    assert np.allclose(off, np.sqrt(2), atol=0.1)
    assert r.min_inter == pytest.approx(off.min())
    assert r.mean_intra < 0.2


def test_medoid_is_the_planted_centre():
    # each person: their centre plus pairs of points mirrored around it, so the centre minimises the sum
    rng = np.random.default_rng(1)
    rows, labels, expected = [], [], []
    for p in range(3):
        centre = np.eye(8)[p]
        offsets = rng.normal(scale=0.05, size=(4, 8))
        pts = np.concatenate([centre[None], centre + offsets, centre - offsets])
        order = rng.permutation(len(pts))  # shuffled: the centre is not first
        expected.append(sum(len(r) for r in rows) + int(np.flatnonzero(order == 0)[0]))
        rows.append(pts[order])
        labels += [p] * len(pts)
    vecs, idx = person_medoids(np.concatenate(rows), np.asarray(labels))
    assert idx.tolist() == expected
    np.testing.assert_allclose(vecs, np.eye(8)[:3], atol=1e-6)


def test_medoid_matches_brute_force():
    rng = np.random.default_rng(2)
    emb = _unit(rng.normal(size=(40, 6)))
    lab = rng.integers(0, 4, size=40)
    _, idx = person_medoids(emb, lab)
    for p in range(4):
        rows = np.flatnonzero(lab == p)
        sums = [sum(np.linalg.norm(emb[i] - emb[j]) for j in rows) for i in rows]
        assert idx[p] == rows[int(np.argmin(sums))]


def test_overlapping_clusters_are_reported():
    # people 0 and 1 share a centre; person 2 is far away
    centres = np.eye(8)[[0, 0, 3]]
    emb, lab = _clusters(per=12, spread=0.2, dim=8, centres=centres, seed=3)
    r = analyze_embeddings(emb, lab, ["yena", "chaewon", "sakura"], enroll=4)
    v = {x.name: x for x in r.verdicts}
    assert v["yena"].verdict.startswith("overlaps with chaewon")
    assert v["chaewon"].verdict.startswith("overlaps with yena")
    assert v["sakura"].verdict == "separated"
    assert v["yena"].overlaps[0][0] == "chaewon" and v["yena"].overlaps[0][1] <= v["yena"].whisker
    assert "overlaps with chaewon" in v["yena"].line()
    assert r.identification["rank1"]["medoid"] < 1.0  # the two can be told apart only by chance


def test_intra_distances_and_tables_match_brute_force():
    rng = np.random.default_rng(4)
    emb = _unit(rng.normal(size=(15, 5)))
    lab = np.repeat([0, 1, 2], 5)
    intra = intra_distances(emb, lab)
    for p in range(3):
        rows = np.flatnonzero(lab == p)
        want = sorted(np.linalg.norm(emb[i] - emb[j]) for i, j in combinations(rows, 2))
        assert len(intra[p]) == comb(5, 2)
        np.testing.assert_allclose(sorted(intra[p]), want, atol=1e-9)
    cen = person_centroids(emb, lab)
    for p in range(3):
        m = emb[lab == p].mean(0)
        np.testing.assert_allclose(cen[p], m / np.linalg.norm(m), atol=1e-6)
    t = distance_table(cen)
    assert np.allclose(t, t.T) and np.all(np.diag(t) == 0)
    assert t[0, 1] == pytest.approx(np.linalg.norm(cen[0] - cen[1]), abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_box_stats_agree_with_matplotlib(seed):
    from matplotlib.cbook import boxplot_stats

    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(1.0, 0.1, 50), [2.0, 0.1]])  # with outliers on both sides
    ours = box_stats(x)
    ref = boxplot_stats(x)[0]
    assert ours.whisker_high == pytest.approx(ref["whishi"])
    assert ours.whisker_low == pytest.approx(ref["whislo"])
    assert (ours.q1, ours.median, ours.q3) == pytest.approx((ref["q1"], ref["med"], ref["q3"]))
    assert ours.n_outliers == len(ref["fliers"]) >= 2
    assert ours.whisker_high <= ours.limit_high
    assert box_stats([]) is None


def test_person_with_one_image_gets_no_verdict():
    emb, lab = _clusters(n_people=3, per=4)
    emb, lab = emb[3:], lab[3:]  # person 0 keeps one image
    r = analyze_embeddings(emb, lab, ["a", "b", "c"], enroll=1)
    assert r.verdicts[0].verdict == "too few images" and r.intra[0] is None
    assert r.verdicts[1].verdict == "separated"
    json.dumps(r.to_dict())  # serialisable with the None box


def test_no_probes_is_a_note_not_a_crash():
    emb, lab = _clusters(n_people=3, per=3)
    r = analyze_embeddings(emb, lab, ["a", "b", "c"], enroll=5)
    assert r.identification is None and any("identification skipped" in n for n in r.notes)
    assert r.verification is not None


def test_draw_pairs_balanced_and_correct():
    lab = np.repeat(np.arange(4), [3, 5, 2, 6])
    pairs, same, how = draw_pairs(lab, max_pairs=1000, seed=0)
    n_pos = 3 + 10 + 1 + 15
    assert same.sum() == (~same).sum() == n_pos  # all same pairs, as many different ones
    assert np.array_equal(lab[pairs[:, 0]] == lab[pairs[:, 1]], same)
    assert np.all(pairs[:, 0] != pairs[:, 1])
    keys = {tuple(sorted(p)) for p in pairs.tolist()}
    assert len(keys) == len(pairs)  # without replacement
    assert how.startswith(f"all {n_pos} same")


def test_draw_pairs_large_set_uses_the_uniform_sampler():
    lab = np.repeat(np.arange(20), 60)  # 35400 same pairs, 708000 different
    pairs, same, how = draw_pairs(lab, max_pairs=200, seed=1)
    assert len(pairs) == 200 and same.sum() == 100
    assert np.array_equal(lab[pairs[:, 0]] == lab[pairs[:, 1]], same)
    assert "with replacement" in how


def test_bad_inputs_raise_analysis_error():
    with pytest.raises(AnalysisError, match="labels"):
        analyze_embeddings(np.zeros((3, 2)), [0, 1], ["a", "b"])
    with pytest.raises(AnalysisError, match="NaN"):
        analyze_embeddings(np.full((2, 2), np.nan), [0, 1], ["a", "b"])
    with pytest.raises(AnalysisError, match="no embeddings for c"):
        analyze_embeddings(np.eye(2), [0, 1], ["a", "b", "c"])
    with pytest.raises(AnalysisError, match="labels_from_names"):
        analyze_embeddings(np.eye(2), ["a", "b"])
    with pytest.raises(AnalysisError, match="same-person"):
        draw_pairs([0, 1, 2])


def test_labels_from_names():
    lab, classes = labels_from_names(["b", "a", "b"])
    assert classes == ["a", "b"] and lab.tolist() == [1, 0, 1]


def _fake_run(root, name, with_analysis):
    run = root / name
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": {"model": "nn2", "loss": "triplet",
                                                            "mining": "semi-hard"}, "data": "x"}))
    (run / "summary.json").write_text(json.dumps({"steps": 10, "samples": 1280, "dev": {"best_acc": 0.9, "auc": 0.95},
                                                  "test": {"acc_at_threshold": 0.88, "auc": 0.94}}))
    if with_analysis:
        emb, lab = _clusters(n_people=3, per=5)
        r = analyze_embeddings(emb, lab, ["a", "b", "c"], enroll=2)
        (run / "analysis").mkdir()
        (run / "analysis" / "analysis.json").write_text(json.dumps(r.to_dict()))
        (run / "analysis" / "report.html").write_text("<html></html>")
    return run


def test_summarize_run(tmp_path):
    row = summarize_run(_fake_run(tmp_path, "r1", with_analysis=True))
    assert (row["model"], row["loss"], row["mining"], row["samples"]) == ("nn2", "triplet", "semi-hard", 1280)
    assert row["dev_acc"] == 0.9 and row["test_acc"] == 0.88 and row["test_auc"] == 0.94
    assert row["rank1"]["medoid"] == 1.0 and row["separated"] == 3 and row["report"].endswith("report.html")
    assert row["input_size"] == 224  # nn2's native side when the run did not override it
    row2 = summarize_run(_fake_run(tmp_path, "r2", with_analysis=False))
    assert row2["rank1"] is None and row2["report"] is None
    cfg = json.loads((tmp_path / "r2" / "config.json").read_text())
    cfg["config"].update(loss="pair", model_kwargs={"input_size": 96})  # "mining" stays in a pair run's config
    (tmp_path / "r2" / "config.json").write_text(json.dumps(cfg))
    row3 = summarize_run(tmp_path / "r2")
    assert row3["mining"] == "uniform pairs" and row3["input_size"] == 96
    cfg["config"].update(loss="triplet", mining="semi-hard", id_weight=0.5, people_weight="sqrt")
    (tmp_path / "r2" / "config.json").write_text(json.dumps(cfg))
    row4 = summarize_run(tmp_path / "r2")
    assert row4["loss"] == "triplet + 0.5×cosface" and row4["mining"] == "semi-hard, people ∝ √n"
    cfg["config"].update(loss="cosface", id_weight=0.0, people_weight="images")
    fold = tmp_path / "pilot" / "fold3"
    fold.mkdir(parents=True)
    (fold / "config.json").write_text(json.dumps(cfg))
    (fold / "summary.json").write_text((tmp_path / "r2" / "summary.json").read_text())
    row5 = summarize_run(fold)
    assert (row5["run"], row5["loss"], row5["mining"]) == ("pilot/fold3", "cosface", "P×K batch, people ∝ n")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnalysisError, match="summary.json"):
        summarize_run(tmp_path / "empty")
    with pytest.raises(AnalysisError, match="does not exist"):
        summarize_run(tmp_path / "missing")
