"""Every figure function draws on 2 and on 30 people; t-SNE settings and alignment."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from iznet.eval.analysis import analyze_embeddings, labels_from_names
from iznet.eval import plots


def _set(n_people, per, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, dim))
    emb = np.repeat(centres, per, 0) + rng.normal(scale=0.3, size=(n_people * per, dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    names = np.array([f"person_{i:02d}" for i in range(n_people) for _ in range(per)])
    return emb, names


@pytest.mark.parametrize("n_people,per", [(2, 5), (30, 3)])
def test_every_figure_draws(tmp_path, n_people, per):
    emb, names = _set(n_people, per)
    lab, classes = labels_from_names(names)
    r = analyze_embeddings(emb, lab, classes, enroll=1)
    figs = {
        "tsne": plots.tsne_figure(emb, names, perplexity=5, n_iter=250, threads=1),
        "seq": plots.tsne_sequence_figure([("a", emb, names), ("b", emb[::-1], names[::-1])], perplexity=5,
                                          n_iter=250, threads=1),
        "box": plots.intra_distance_boxplot(emb, names, nearest_medoid=[v.nearest_distance for v in r.verdicts]),
        "heat": plots.distance_heatmap(r.medoid_table, r.names),
        "roc": plots.roc_figure(r.pair_dist, r.pair_same),
    }
    for key, fig in figs.items():
        assert isinstance(fig, Figure), key
        out = plots.save_figure(fig, tmp_path / f"{key}.png", dpi=40)
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # one legend entry per person
    assert len(figs["tsne"].legends[0].get_texts()) == n_people
    assert len(figs["seq"].legends[0].get_texts()) == n_people
    assert len(figs["seq"].axes) == 2
    # one box per person, the distance axis labelled
    box_ax = figs["box"].axes[0]
    assert box_ax.get_ylabel() == "Euclidean distance" and len(box_ax.get_xticklabels()) == n_people
    # every off-diagonal cell annotated
    assert len(figs["heat"].axes[0].texts) == n_people * (n_people - 1)


def test_styles_distinct_for_thirty_people():
    styles = plots.person_styles([f"p{i}" for i in range(30)])
    assert len(set(styles.values())) == 30


def test_effective_perplexity():
    assert plots.effective_perplexity(2880, 150) == 150
    assert plots.effective_perplexity(100, 150) == pytest.approx(33.0)
    assert plots.effective_perplexity(2, 150) == 0.5
    with pytest.raises(plots.PlotError):
        plots.effective_perplexity(1, 30)
    with pytest.raises(plots.PlotError):
        plots.effective_perplexity(10, 0)


def test_perplexity_lowered_is_reported():
    emb, names = _set(3, 7)  # 21 points: 150 is impossible
    proj = plots.tsne_project(emb, perplexity=150, n_iter=250, threads=1)
    assert proj.lowered and proj.perplexity == pytest.approx(20 / 3) and proj.requested_perplexity == 150
    assert proj.xy.shape == (21, 2) and np.isfinite(proj.xy).all()
    assert proj.to_dict()["lowered"] is True
    fig = plots.tsne_figure(emb, names, projection=proj)
    assert "lowered from 150" in fig.axes[0].get_title()
    kept = plots.tsne_project(emb, perplexity=3, n_iter=250, threads=1)
    assert not kept.lowered and "lowered" not in kept.note()


def test_tsne_rejects_too_few_iterations_and_bad_names():
    emb, names = _set(2, 5)
    with pytest.raises(plots.PlotError, match="250"):
        plots.tsne_project(emb, n_iter=100)
    with pytest.raises(plots.PlotError, match="names"):
        plots.tsne_figure(emb, names[:-1], n_iter=250, threads=1)


def test_procrustes_recovers_rotation_reflection_scale_shift():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(40, 2))
    theta = 1.1
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]) @ np.diag([1, -1])
    moved = ref @ rot * 3.0 + np.array([5.0, -2.0])
    r, mm, s, mr = plots.procrustes_align(ref, moved)
    np.testing.assert_allclose((moved - mm) @ r * s + mr, ref, atol=1e-9)


def test_sequence_frames_are_aligned():
    emb, names = _set(3, 10, seed=1)
    p1 = plots.tsne_project(emb, perplexity=5, n_iter=250, threads=1)
    p2 = plots.TsneProjection(**{**p1.__dict__, "xy": p1.xy[:, ::-1] * -2.0 + 7.0})  # a flipped, scaled copy
    fig = plots.tsne_sequence_figure([("a", emb, names), ("b", emb, names)], projections=[p1, p2])
    a, b = (np.concatenate([c.get_offsets() for c in ax.collections]) for ax in fig.axes[:2])
    np.testing.assert_allclose(b, a, atol=1e-6)


def test_heatmap_rejects_a_wrong_table():
    with pytest.raises(plots.PlotError):
        plots.distance_heatmap(np.zeros((3, 3)), ["a", "b"])
