"""Figures of the analysis tools: t-SNE maps, intra-person distance boxplots, distance tables, ROC.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (an Agg canvas, no global
figure registry, nothing ever shown); the caller saves it, e.g. with :func:`save_figure`.

People get one colour and one marker each, the same in every figure that takes ``names``
(:func:`person_styles`): the ten ``tab10`` colours, then the same colours with another marker, so up to
about 40 people stay distinguishable.

t-SNE (scikit-learn) follows the write-up: perplexity 150 and 5000 iterations by default, after a PCA to
50 dimensions. scikit-learn needs perplexity < number of points; :func:`effective_perplexity` lowers a
perplexity that is too large for the set to (N - 1) / 3 (at that value each point's 3·perplexity
nearest neighbours are every other point), and the figure says so.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from iznet.errors import IznetError

_logger = logging.getLogger(__name__)

_MARKERS = ("o", "s", "^", "D", "v", "P")
MIN_TSNE_ITER = 250  # scikit-learn refuses fewer


class PlotError(IznetError):
    """Inputs a figure cannot be drawn from (shape mismatch, too few points, bad settings)."""


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | Path, dpi: int = 130) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix, e.g. ``.png``) atomically."""
    from iznet.utils.io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png", bbox_inches="tight")
    return path


def person_styles(names: Sequence[str]) -> dict[str, tuple[tuple[float, float, float, float], str]]:
    """A (colour, marker) per distinct name, in sorted name order: tab10 colours, a new marker every 10."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    people = sorted({str(n) for n in names})
    return {p: (cmap(i % 10), _MARKERS[(i // 10) % len(_MARKERS)]) for i, p in enumerate(people)}


def _names_array(embeddings, names) -> tuple[np.ndarray, np.ndarray]:
    emb = np.asarray(embeddings, dtype=np.float64)
    nm = np.asarray([str(n) for n in names])
    if emb.ndim != 2:
        raise PlotError(f"embeddings must be (N, D); got shape {emb.shape}")
    if emb.shape[0] != nm.size:
        raise PlotError(f"{emb.shape[0]} embeddings but {nm.size} names; give one name per embedding")
    if not np.isfinite(emb).all():
        raise PlotError("embeddings contain NaN or inf")
    return emb, nm


def _legend(fig, handles_by_name: dict, n_people: int) -> None:
    ncol = 1 if n_people <= 16 else 2
    leg = fig.legend(handles=list(handles_by_name.values()), labels=list(handles_by_name), loc="outside right upper",
                     ncol=ncol, fontsize=8 if n_people > 12 else 9, frameon=False, title="person", title_fontsize=9)
    for h in leg.legend_handles:  # the same legible marker size whatever the scatter's point size
        h.set_sizes([36.0])
        h.set_alpha(1.0)


# ------------------------------------------------------------------------------------------ t-SNE
@dataclasses.dataclass
class TsneProjection:
    """2-D t-SNE coordinates and the settings that produced them.

    Attributes:
        xy: (N, 2) coordinates.
        perplexity: the perplexity used.
        requested_perplexity: the perplexity asked for (larger when it was lowered).
        n_iter: iterations.
        pca_dims: dimensions after the PCA step (the input's when it had no more).
        input_dims: dimensions of the embeddings.
        seed: random seed.
        kl_divergence: final KL divergence reported by scikit-learn.
    """

    xy: np.ndarray
    perplexity: float
    requested_perplexity: float
    n_iter: int
    pca_dims: int
    input_dims: int
    seed: int
    kl_divergence: float

    @property
    def lowered(self) -> bool:
        return self.perplexity < self.requested_perplexity

    def note(self) -> str:
        """One line describing the settings, saying when the perplexity was lowered."""
        s = f"perplexity {self.perplexity:.3g}"
        if self.lowered:
            s += f" (lowered from {self.requested_perplexity:g}: only {len(self.xy)} points)"
        pca = (f"PCA {self.input_dims} to {self.pca_dims} dims" if self.pca_dims < self.input_dims
               else f"no PCA ({self.input_dims} dims)")
        return s + f", {self.n_iter} iterations, {pca}, seed {self.seed}"

    def to_dict(self) -> dict:
        return {"perplexity": self.perplexity, "requested_perplexity": self.requested_perplexity,
                "lowered": self.lowered, "n_iter": self.n_iter, "pca_dims": self.pca_dims,
                "input_dims": self.input_dims, "seed": self.seed,
                "kl_divergence": self.kl_divergence, "n_points": int(len(self.xy))}


def effective_perplexity(n_points: int, requested: float) -> float:
    """The perplexity t-SNE can use on ``n_points`` points: ``requested``, capped at (N - 1) / 3.

    scikit-learn requires perplexity < N; at (N - 1) / 3 the 3·perplexity nearest neighbours it looks at
    are already every other point. Tiny sets (N <= 2) get 0.5.

    >>> effective_perplexity(1000, 150), effective_perplexity(100, 150)
    (150.0, 33.0)
    """
    if requested <= 0:
        raise PlotError(f"perplexity must be positive, got {requested}")
    if n_points < 2:
        raise PlotError(f"t-SNE needs at least 2 points, got {n_points}")
    return float(min(float(requested), max((n_points - 1) / 3.0, 0.5)))


def tsne_project(embeddings, perplexity: float = 150.0, n_iter: int = 5000, pca_dims: int = 50,
                 seed: int = 0, threads: int | None = None) -> TsneProjection:
    """PCA to ``pca_dims`` dimensions, then scikit-learn t-SNE to 2-D (PCA initialisation).

    Args:
        embeddings: (N, D).
        perplexity: requested perplexity (lowered by :func:`effective_perplexity` when too large).
        n_iter: t-SNE iterations (at least 250; the first 250 are the early-exaggeration phase).
        pca_dims: PCA output dimensions (skipped when D or N is not larger).
        seed: random seed of PCA and t-SNE.
        threads: OpenMP threads of the t-SNE gradient (default: scikit-learn's, one per core). On a
            machine whose cores are busy with other work, 1 can be several times faster: idle
            OpenMP threads spin while waiting for a descheduled sibling.
    """
    import contextlib

    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise PlotError(f"embeddings must be (N, D); got shape {x.shape}")
    if n_iter < MIN_TSNE_ITER:
        raise PlotError(f"t-SNE needs at least {MIN_TSNE_ITER} iterations, got {n_iter}")
    n, d_in = x.shape
    used = effective_perplexity(n, perplexity)
    if used < perplexity:
        _logger.info("t-SNE: perplexity lowered from %g to %.3g for %d points", perplexity, used, n)
    dims = min(int(pca_dims), n, x.shape[1])
    if dims < x.shape[1]:
        x = PCA(n_components=dims, random_state=seed).fit_transform(x)
    tsne = TSNE(n_components=2, perplexity=used, max_iter=int(n_iter), init="pca", random_state=seed,
                learning_rate="auto")
    limit = threadpool_limits(limits=int(threads), user_api="openmp") if threads else contextlib.nullcontext()
    with limit:
        xy = tsne.fit_transform(x)
    return TsneProjection(xy=xy.astype(np.float64), perplexity=used, requested_perplexity=float(perplexity),
                          n_iter=int(n_iter), pca_dims=int(x.shape[1]), input_dims=int(d_in), seed=int(seed),
                          kl_divergence=float(tsne.kl_divergence_))


def _scatter(ax, xy: np.ndarray, names: np.ndarray, styles: dict, size: float) -> dict:
    handles = {}
    for p in sorted(set(names.tolist())):
        m = names == p
        col, mk = styles[p]
        handles[p] = ax.scatter(xy[m, 0], xy[m, 1], s=size, color=col, marker=mk, alpha=0.8, linewidths=0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    return handles


def _point_size(n: int) -> float:
    return float(np.clip(8000.0 / max(n, 1), 8.0, 40.0))


def tsne_figure(embeddings, names: Sequence[str], perplexity: float = 150.0, n_iter: int = 5000,
                pca_dims: int = 50, seed: int = 0, title: str | None = "t-SNE of the embeddings",
                projection: TsneProjection | None = None, threads: int | None = None):
    """One t-SNE map, one colour and marker per person, the legend outside the axes.

    Args:
        embeddings: (N, D).
        names: N person names, one per row.
        perplexity, n_iter, pca_dims, seed, threads: see :func:`tsne_project`.
        title: figure title; the settings (and any lowering of the perplexity) are added below it.
        projection: an already computed projection of these embeddings (then nothing is recomputed);
            call :func:`tsne_project` first to learn the perplexity actually used.

    Returns:
        the Figure.
    """
    emb, nm = _names_array(embeddings, names)
    proj = projection if projection is not None else tsne_project(emb, perplexity, n_iter, pca_dims, seed, threads)
    if len(proj.xy) != len(nm):
        raise PlotError(f"projection has {len(proj.xy)} points but there are {len(nm)} names")
    styles = person_styles(nm)
    n_people = len(styles)
    fig = _new_figure(7.5 + (1.6 if n_people <= 16 else 3.2), 7.0)
    ax = fig.add_subplot()
    handles = _scatter(ax, proj.xy, nm, styles, _point_size(len(nm)))
    ax.set_title(f"{len(nm)} images of {n_people} people; {proj.note()}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=12)
    _legend(fig, handles, n_people)
    return fig


def procrustes_align(reference: np.ndarray, moving: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """The rotation (or reflection), uniform scale and shift that best map ``moving`` onto ``reference``.

    Args:
        reference: (M, 2) points.
        moving: (M, 2) the corresponding points.

    Returns:
        ``(R (2, 2), moving_mean (2,), scale, reference_mean (2,))``: apply to any points ``y`` as
        ``(y - moving_mean) @ R * scale + reference_mean``.
    """
    ref = np.asarray(reference, dtype=np.float64)
    mov = np.asarray(moving, dtype=np.float64)
    mr, mm = ref.mean(0), mov.mean(0)
    a, b = ref - mr, mov - mm
    u, s, vt = np.linalg.svd(b.T @ a)
    rot = u @ vt
    denom = float((b * b).sum())
    scale = float(s.sum() / denom) if denom > 0 else 1.0
    return rot, mm, scale, mr


def _align_to(prev_xy: np.ndarray, prev_names: np.ndarray, xy: np.ndarray, names: np.ndarray) -> np.ndarray:
    if len(prev_xy) == len(xy) and np.array_equal(prev_names, names):
        ref, mov = prev_xy, xy  # the same images in the same order: match point to point
    else:  # different images: match each shared person's mean position
        shared = sorted(set(prev_names.tolist()) & set(names.tolist()))
        if len(shared) < 2:
            return xy
        ref = np.stack([prev_xy[prev_names == p].mean(0) for p in shared])
        mov = np.stack([xy[names == p].mean(0) for p in shared])
    rot, mm, scale, mr = procrustes_align(ref, mov)
    return (xy - mm) @ rot * scale + mr


def tsne_sequence_figure(frames: Sequence[tuple[str, np.ndarray, Sequence[str]]], perplexity: float = 150.0,
                         n_iter: int = 5000, pca_dims: int = 50, seed: int = 0,
                         title: str | None = "t-SNE during training",
                         projections: Sequence[TsneProjection] | None = None, threads: int | None = None):
    """t-SNE maps of several moments of a training run, side by side (the write-up's Figures 5, 7, 9, 11, 13).

    Every frame is projected on its own with the same settings (seed, perplexity, iterations), so no
    frame is pulled towards another's layout. t-SNE's output has no fixed orientation, so each frame is
    then rotated/reflected, scaled and shifted (orthogonal Procrustes) to best match the frame before it:
    point to point when both frames hold the same images in the same order (training snapshots do),
    else on each shared person's mean position. A person keeps their colour in every panel.

    Args:
        frames: ``(label, embeddings (N_i, D), names (N_i,))`` per panel, left to right.
        perplexity, n_iter, pca_dims, seed, threads: see :func:`tsne_project` (same for every frame).
        title: figure title.
        projections: already computed projections, one per frame (then nothing is recomputed).

    Returns:
        the Figure (one row of panels, a shared legend on the right).
    """
    if not frames:
        raise PlotError("no frames to draw")
    if projections is not None and len(projections) != len(frames):
        raise PlotError(f"{len(projections)} projections for {len(frames)} frames")
    checked = [(str(lab), *_names_array(e, n)) for lab, e, n in frames]
    projs = list(projections) if projections is not None else [
        tsne_project(e, perplexity, n_iter, pca_dims, seed, threads) for _, e, _ in checked]
    styles = person_styles(np.concatenate([n for _, _, n in checked]))
    n_people = len(styles)
    panel = 3.6
    fig = _new_figure(panel * len(frames) + (1.6 if n_people <= 16 else 3.2), panel + 0.9)
    axes = fig.subplots(1, len(frames), squeeze=False)[0]
    handles: dict = {}
    prev = None
    for ax, (label, _, nm), proj in zip(axes, checked, projs):
        xy = proj.xy if prev is None else _align_to(prev[0], prev[1], proj.xy, nm)
        prev = (xy, nm)
        handles.update(_scatter(ax, xy, nm, styles, _point_size(len(nm)) * 0.6))
        ax.set_title(label, fontsize=10)
    handles = {p: handles[p] for p in sorted(handles)}
    notes = {p.note() for p in projs}
    sub = notes.pop() if len(notes) == 1 else "settings differ per frame: " + "; ".join(p.note() for p in projs)
    if title:
        fig.suptitle(f"{title}\n{sub}", fontsize=11)
    _legend(fig, handles, n_people)
    return fig


# ---------------------------------------------------------------------------------------- boxplot
def intra_distance_boxplot(embeddings, names: Sequence[str], title: str | None = "Distances within each person",
                           nearest_medoid: Sequence[float] | None = None):
    """One box per person of the Euclidean distances between every two of their embeddings.

    Boxes follow matplotlib's defaults: the box spans Q1..Q3 with the median line, the whiskers reach
    the most extreme distances within 1.5 IQR of the box, dots beyond are outliers.

    Args:
        embeddings: (N, D).
        names: N person names, one per row; boxes in sorted name order.
        title: figure title.
        nearest_medoid: optional, one value per person (sorted name order): the distance from their
            medoid to the nearest other person's medoid, drawn as a red mark. A mark above the upper
            whisker means the person is "separated" (see :mod:`iznet.eval.analysis`).

    Returns:
        the Figure.
    """
    from iznet.eval.analysis import intra_distances, labels_from_names

    emb, nm = _names_array(embeddings, names)
    lab, people = labels_from_names(nm)
    dists = intra_distances(emb, lab, len(people))
    n = len(people)
    fig = _new_figure(max(6.0, 0.42 * n + 2.5), 5.2)
    ax = fig.add_subplot()
    pos = np.arange(1, n + 1)
    ax.boxplot([d if d.size else [np.nan] for d in dists], positions=pos, widths=0.6, patch_artist=True,
               boxprops={"facecolor": "#cfe0f3", "edgecolor": "#2b5b8a"}, medianprops={"color": "#c46a00"},
               flierprops={"marker": ".", "markersize": 3, "markeredgecolor": "#555555", "alpha": 0.6})
    if nearest_medoid is not None:
        near = np.asarray(nearest_medoid, dtype=np.float64).reshape(-1)
        if near.size != n:
            raise PlotError(f"nearest_medoid has {near.size} values for {n} people")
        ax.scatter(pos, near, marker="_", s=260, linewidths=2.2, color="#d62728", zorder=3,
                   label="distance to the nearest other person's medoid")
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_xticks(pos)
    counts = np.bincount(lab, minlength=n)
    ax.set_xticklabels([f"{p} ({c})" for p, c in zip(people, counts)], rotation=55, ha="right", fontsize=8)
    ax.set_ylabel("Euclidean distance")
    ax.set_xlabel("person (images)")
    top = max([float(d.max()) for d in dists if d.size] + ([float(np.nanmax(near))] if nearest_medoid is not None
                                                             else []) + [0.1])
    ax.set_ylim(0, top * 1.08)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    return fig


# ---------------------------------------------------------------------------------------- heatmap
def distance_heatmap(table, names: Sequence[str], title: str = "Distances between medoids",
                     vmax: float | None = None):
    """A (P, P) distance table as an annotated heatmap; each row's smallest off-diagonal value is boxed.

    Args:
        table: (P, P) distances.
        names: P names (row and column order of ``table``).
        title: figure title.
        vmax: top of the colour scale (default: 2, the largest distance between unit vectors, or the
            table's maximum when larger).

    Returns:
        the Figure (dark = close; the diagonal is grey).
    """
    from matplotlib import colormaps
    from matplotlib.patches import Rectangle

    t = np.asarray(table, dtype=np.float64)
    p = len(names)
    if t.shape != (p, p):
        raise PlotError(f"table of shape {t.shape} for {p} names; expected ({p}, {p})")
    vmax = float(vmax) if vmax is not None else max(2.0, float(np.nanmax(t)) if t.size else 2.0)
    cmap = colormaps["magma"].with_extremes(bad="#d9d9d9")
    shown = t.copy()
    np.fill_diagonal(shown, np.nan)
    side = max(4.5, 0.42 * p + 2.2)
    fig = _new_figure(side + 1.0, side)
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=vmax)
    fs = 9 if p <= 12 else (7 if p <= 20 else 6)
    digits = 2 if p <= 30 else 1
    for i in range(p):
        others = [j for j in range(p) if j != i]
        jmin = min(others, key=lambda j: t[i, j]) if others else None
        for j in range(p):
            if i == j:
                continue
            r, g, b, _ = cmap(min(max(t[i, j] / vmax, 0.0), 1.0))
            light = 0.299 * r + 0.587 * g + 0.114 * b > 0.5
            ax.text(j, i, f"{t[i, j]:.{digits}f}", ha="center", va="center", fontsize=fs,
                    color="black" if light else "white", fontweight="bold" if j == jmin else "normal")
        if jmin is not None:
            ax.add_patch(Rectangle((jmin - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="#19c3d6", linewidth=1.6))
    ax.set_xticks(range(p))
    ax.set_yticks(range(p))
    ax.set_xticklabels([str(n) for n in names], rotation=55, ha="right", fontsize=8)
    ax.set_yticklabels([str(n) for n in names], fontsize=8)
    ax.set_title(title + ("\n(boxed: each row's nearest other person)" if p > 1 else ""), fontsize=11)
    fig.colorbar(im, ax=ax, shrink=0.8, label="Euclidean distance")
    return fig


# -------------------------------------------------------------------------------------------- ROC
def roc_figure(dist, same, title: str | None = "Verification ROC", label: str | None = None):
    """ROC of same/different pairs: true-accept rate against false-accept rate, AUC and EER marked.

    Args:
        dist: (M,) pair distances (smaller = more alike).
        same: (M,) True for a same-person pair.
        title: figure title.
        label: curve label (the AUC is appended).

    Returns:
        the Figure (linear axes on the left, log false-accept rate on the right).
    """
    from iznet.eval.verification import auc, eer, roc

    far, tar, _ = roc(dist, same)
    a = auc(dist, same)
    e = eer(dist, same)["eer"]
    n_same = int(np.sum(np.asarray(same, dtype=bool)))
    n_diff = int(np.size(same) - n_same)
    fig = _new_figure(10.0, 4.6)
    ax1, ax2 = fig.subplots(1, 2)
    name = f"{label + ': ' if label else ''}AUC {a:.3f}, EER {e:.3f}"
    ax1.plot(far, tar, color="#1f77b4", lw=1.8, label=name)
    ax1.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    ax1.plot([e], [1 - e], "o", color="#d62728", label="equal error rate")
    ax1.set_xlim(-0.01, 1.01)
    ax1.set_ylim(-0.01, 1.01)
    ax1.set_aspect("equal")
    ax1.set_xlabel("false accept rate (different people accepted)")
    ax1.set_ylabel("true accept rate (same person accepted)")
    ax1.grid(alpha=0.3)
    ax1.legend(loc="lower right", fontsize=8)
    pos = far > 0
    ax2.plot(far[pos], tar[pos], color="#1f77b4", lw=1.8)
    ax2.set_xscale("log")
    ax2.set_xlim(max(1.0 / max(n_diff, 1), 1e-6) * 0.8, 1.0)
    ax2.set_ylim(-0.01, 1.01)
    ax2.set_xlabel("false accept rate (log scale)")
    ax2.set_ylabel("true accept rate")
    ax2.grid(alpha=0.3, which="both")
    if title:
        fig.suptitle(f"{title} ({n_same} same, {n_diff} different pairs)", fontsize=11)
    return fig
