"""Unknown-face rules with a background cohort, against the shipped rule, on simulated galleries.

The galleries are stage ``openset_dev``'s (iznet.eval.openset's draws: ``--group-size`` people with ``--k``
photos enrolled, their other photos and ``--strangers`` other people's photos labelled, ``--rounds`` rounds,
seed 0). The cohort is the centroids of ``--cohort-people`` people of a training pack who are not
development people (``--exclude``), ``--cohort-k`` faces each. Families (docs/training.md, "A background of
other people's faces for the rule"):

- ``shipped``: the embedder's rule (threshold tightened to the gallery at its ``gallery_far``, margin);
- ``cohort_margin``: distance <= T and min(runner-up, nearest cohort centroid) - distance >= m;
- ``snorm``: 0.5 * ((d - mu_face) / sd_face + (d - mu_person) / sd_person) <= T and runner-up margin >= m, the
  mean and deviation over the ``--top`` nearest cohort distances of the face and of the enrolled centroid.

For each family the grid point with the most right names (mean over sizes) whose wrong names and named
strangers are at most the shipped rule's at every size is reported, and the one within the usual limits.

    python scripts/cohort_rule_sim.py -e src/iznet/assets/embedder.pt \\
        --pack collection/v2/dev_detector_aligned112.pt --cohort-pack collection/v2/train_aligned112.pt \\
        --exclude collection/v2/dev_people.txt --json runs/cohort_rule/dev.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from openset_rules import faces  # noqa: E402
from self_rule_sim import shipped_settings  # noqa: E402

from iznet.eval.openset import _galleries, decide  # noqa: E402
from iznet.recognize.matcher import Matcher, gallery_threshold  # noqa: E402
from iznet.recognize.prototypes import pairwise_distances  # noqa: E402

MARGINS = np.round(np.arange(0, 0.2001, 0.025), 3)


def cohort_centroids(pack: Path, exclude: Path | None, people: int, k: int, embedder, seed: int) -> np.ndarray:
    from iznet.data.pack import load_pack

    p = load_pack(pack)
    skip = set()
    if exclude is not None:
        skip = {ln.strip().lower() for ln in exclude.read_text().splitlines() if ln.strip() and not ln.startswith("#")}
    labels = np.asarray(p.labels)
    counts = np.bincount(labels, minlength=len(p.classes))
    ok = [c for c in range(len(p.classes)) if counts[c] >= k and p.classes[c].lower() not in skip]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(ok, size=min(people, len(ok)), replace=False)
    rows = np.concatenate([np.flatnonzero(labels == c)[:k] for c in chosen])
    emb = np.asarray(embedder.embed(p.decode(rows)), dtype=np.float64)
    C = emb.reshape(len(chosen), k, -1).mean(1)
    return C / np.linalg.norm(C, axis=1, keepdims=True)


def top_stats(X: np.ndarray, cohort: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest cohort distance, and mean and deviation of the ``top`` nearest, of each row of X."""
    D = np.sort(pairwise_distances(X, cohort), axis=1)[:, :top]
    return D[:, 0], D.mean(1), np.maximum(D.std(1), 1e-6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-e", "--embedder", required=True)
    ap.add_argument("--pack", type=Path, required=True)
    ap.add_argument("--cohort-pack", type=Path, required=True)
    ap.add_argument("--exclude", type=Path, default=None, help="people never taken into the cohort, one a line")
    ap.add_argument("--cohort-people", type=int, default=2000)
    ap.add_argument("--cohort-k", type=int, default=5)
    ap.add_argument("--top", type=int, default=50)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--group-size", default="12,48")
    ap.add_argument("--strangers", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--max-wrong", type=float, default=0.01)
    ap.add_argument("--max-strangers-named", type=float, default=0.1)
    ap.add_argument("--fixed", default=None, metavar="FAMILY:T:M",
                    help="score one setting of one family (chosen elsewhere) instead of searching the grid: the "
                    "way to test a setting on people never used to choose it")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(1)
    from iznet.recognize.embedder import load_embedder

    embedder = load_embedder(a.embedder, device="cpu")
    shipped = shipped_settings(embedder)
    if shipped is None:
        ap.error(f"{a.embedder} has no shipped rule (meta.calibration) to compare with")
    t_ship, far, m_ship = shipped.threshold, shipped.far, shipped.margin
    emb, labels = faces(a.pack, "all", a.embedder, 0)
    cohort = cohort_centroids(a.cohort_pack, a.exclude, a.cohort_people, a.cohort_k, embedder, 0)
    c1, mu, sd = top_stats(emb, cohort, a.top)
    sizes = [int(s) for s in a.group_size.split(",")]
    # grids; thresholds for distances and for normalised scores
    t_grid = np.round(np.arange(0.80, 1.30, 0.01), 3)
    z_grid = np.round(np.arange(-6.0, 0.01, 0.1), 2)
    fams = {"cohort_margin": (t_grid, MARGINS), "snorm": (z_grid, MARGINS)}
    if a.fixed:
        try:
            fam, t_fix, m_fix = a.fixed.split(":")
            fams = {fam: (np.array([float(t_fix)]), np.array([float(m_fix)]))}
        except ValueError:
            ap.error(f"--fixed {a.fixed!r}: give FAMILY:T:M, e.g. snorm:-0.7:0.1")
        if fam not in ("cohort_margin", "snorm"):
            ap.error(f"--fixed {a.fixed!r}: the family is cohort_margin or snorm")
    counts = {(f, s): np.zeros((len(g[0]), len(g[1]), 4)) for f, g in fams.items() for s in sizes}  # r, w, str, -
    ship = {s: np.zeros(4) for s in sizes}
    totals = {s: [0, 0] for s in sizes}
    for size in sizes:
        names = [str(j) for j in range(size)]
        owner = [names[j] for j in range(size) for _ in range(a.k)]
        for P, enrolled, probe_rows, probe_true, str_rows in _galleries(emb, labels, size, a.k, a.strangers,
                                                                        a.rounds, 0, "centroid"):
            tg = gallery_threshold(Matcher(P, names), np.concatenate(enrolled), owner, far)
            _, mu_p, sd_p = top_stats(P, cohort, a.top)
            for part, idx in (("members", probe_rows), ("strangers", str_rows)):
                d = pairwise_distances(emb[idx], P)
                order = np.argsort(d, axis=1)
                r = np.arange(len(idx))
                best, second, who = d[r, order[:, 0]], d[r, order[:, 1]], order[:, 0]
                right = who == probe_true if part == "members" else np.zeros(len(idx), bool)
                gap_c = np.minimum(second, c1[idx]) - best
                z = 0.5 * ((best - mu[idx]) / sd[idx] + (best - mu_p[who]) / sd_p[who])
                named = decide(best, second, "gallery+margin", t_ship, tg, m_ship)
                if part == "members":
                    ship[size] += [(named & right).sum(), (named & ~right).sum(), 0, 0]
                    totals[size][0] += len(idx)
                else:
                    ship[size][2] += named.sum()
                    totals[size][1] += len(idx)
                for fam, score, marg in (("cohort_margin", best, gap_c), ("snorm", z, second - best)):
                    if fam not in fams:
                        continue
                    tt, mm = fams[fam]
                    ok = (score[None, None, :] <= tt[:, None, None]) & (marg[None, None, :] >= mm[None, :, None])
                    c = counts[(fam, size)]
                    if part == "members":
                        c[..., 0] += (ok & right).sum(-1)
                        c[..., 1] += (ok & ~right).sum(-1)
                    else:
                        c[..., 2] += ok.sum(-1)
    share = {s: {"right": ship[s][0] / totals[s][0], "wrong": ship[s][1] / totals[s][0],
                 "strangers_named": ship[s][2] / totals[s][1]} for s in sizes}
    out = {"args": {k: str(v) for k, v in vars(a).items()}, "shipped": share, "families": {}}
    if a.fixed:  # one setting: its numbers as they are, nothing chosen
        fam, (tt, mm) = next(iter(fams.items()))
        row = {s: {"right": float(counts[(fam, s)][0, 0, 0] / totals[s][0]),
                   "wrong": float(counts[(fam, s)][0, 0, 1] / totals[s][0]),
                   "strangers_named": float(counts[(fam, s)][0, 0, 2] / totals[s][1])} for s in sizes}
        out["fixed"] = {"family": fam, "threshold": float(tt[0]), "margin": float(mm[0]), "by_size": row}
        print(f"{fam} at T {tt[0]}, m {mm[0]}: " + "; ".join(
            f"{s} people {100 * v['right']:.1f}% / {100 * v['wrong']:.2f}% / {100 * v['strangers_named']:.1f}%"
            for s, v in row.items()))
        fams = {}
    print(f"shipped rule (threshold {t_ship:.4f}, gallery far {far}, margin {m_ship}): " + "; ".join(
        f"{s} people {100 * v['right']:.1f}% / {100 * v['wrong']:.2f}% / {100 * v['strangers_named']:.1f}%"
        for s, v in share.items()))
    for fam, (tt, mm) in fams.items():
        R = np.mean([counts[(fam, s)][..., 0] / totals[s][0] for s in sizes], axis=0)
        W = {s: counts[(fam, s)][..., 1] / totals[s][0] for s in sizes}
        S = {s: counts[(fam, s)][..., 2] / totals[s][1] for s in sizes}
        res = {}
        for crit, feas in (
                ("at_most_shipped", np.all([(W[s] <= share[s]["wrong"] + 1e-12) & (S[s] <= share[s]["strangers_named"]
                                                                                   + 1e-12) for s in sizes], 0)),
                ("limits", np.all([(W[s] <= a.max_wrong) & (S[s] <= a.max_strangers_named) for s in sizes], 0))):
            if not feas.any():
                res[crit] = None
                continue
            i, j = np.unravel_index(np.argmax(np.where(feas, R, -1)), R.shape)
            res[crit] = {"threshold": float(tt[i]), "margin": float(mm[j]), "right_mean": float(R[i, j]),
                         "by_size": {s: {"right": float(counts[(fam, s)][i, j, 0] / totals[s][0]),
                                         "wrong": float(W[s][i, j]), "strangers_named": float(S[s][i, j])}
                                     for s in sizes}}
            b = res[crit]
            print(f"{fam} ({crit}): T {b['threshold']}, m {b['margin']}: right {100 * b['right_mean']:.1f}% (shipped "
                  f"{100 * np.mean([share[s]['right'] for s in sizes]):.1f}%); " + "; ".join(
                      f"{s}: {100 * v['right']:.1f}% / {100 * v['wrong']:.2f}% / {100 * v['strangers_named']:.1f}%"
                      for s, v in b["by_size"].items()))
        out["families"][fam] = res
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
