"""Evaluation people who may also be training people under another key.

The collection excludes evaluation people by name, but some sources give no names (CelebA's people are
numbers, FIW's first names): a glint24 or CFP person, or a named held-out person, could train under a number.
This check embeds every evaluation person (up to ``--per`` pictures each) and every training identity, and
lists each evaluation person's nearest training identity by centroid distance, beside two references from the
training people themselves: the distance between the two halves of one person's pictures (same person) and
from one half to the nearest *other* training person (different people). The closest pairs go on contact
sheets to be looked at: a distance alone does not tell a twin-like stranger from the same person.

    python scripts/overlap_check.py -e src/iznet/assets/embedder.pt --train collection/v5/train_aligned112.pt \\
        --eval glint24=packs/glint24_112.pt --eval heldout=collection/v5/heldout_aligned112.pt --cfp \\
        --top 60 --out runs/overlap_v5

Writes OUT/overlap.json (every evaluation person's nearest training identity, the references),
OUT/sheet_<set>_<range>_NN.png (per row: the evaluation person's pictures, then the training identity's, and the
distance; 20 rows a sheet) and OUT/cache.npz (the embeddings: a run with other --sheet-set / --sheet-range
options only draws). Review a distance band with e.g. ``--sheet-set cfp --sheet-range 0.6,0.75``.
Packs must hold crops the embedder takes as they are (aligned 112-pixel crops for an aligned embedder).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def sample_per_class(labels: np.ndarray, per: int, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Up to ``per`` image positions of each class (random, sorted)."""
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    out = {}
    for group in np.split(order, bounds):
        if len(group):
            pick = group if len(group) <= per else rng.choice(group, per, replace=False)
            out[int(labels[group[0]])] = np.sort(pick)
    return out


def embed_pack(emb, pack, idx: np.ndarray, chunk: int = 2048) -> np.ndarray:
    out = []
    for s in range(0, len(idx), chunk):
        out.append(np.asarray(emb.embed(pack.decode(idx[s:s + chunk]), batch_size=128), dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0, 128), np.float32)


class Cache:
    """Embeddings (and CFP's crops) of an earlier run with the same embedder, seed and --per, in OUT/cache.npz,
    so that drawing other contact sheets (--sheet-set, --sheet-range) embeds nothing again."""

    def __init__(self, path: Path, key: str):
        self.path, self.key, self.data = path, key, {}
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    self.data = {k: z[k] for k in z.files if k != "key"}

    def get(self, name: str, make):
        if name not in self.data:
            self.data[name] = np.asarray(make())
        return self.data[name]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(self.path, key=np.array(self.key), **self.data)


def nearest(queries: np.ndarray, refs: np.ndarray, exclude: np.ndarray | None = None, k: int = 1,
            chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(Q, k) indices and Euclidean distances of each unit query's nearest unit refs; ``exclude[q]`` is a ref
    index query q may not match (its own identity), or -1."""
    idx = np.zeros((len(queries), k), np.int64)
    dist = np.zeros((len(queries), k), np.float32)
    for s in range(0, len(queries), chunk):
        sim = queries[s:s + chunk] @ refs.T
        if exclude is not None:
            rows = np.flatnonzero(exclude[s:s + chunk] >= 0)
            sim[rows, exclude[s:s + chunk][rows]] = -np.inf
        top = np.argsort(-sim, axis=1)[:, :k]
        idx[s:s + chunk] = top
        dist[s:s + chunk] = np.sqrt(np.maximum(2 - 2 * np.take_along_axis(sim, top, axis=1), 0))
    return idx, dist


def cfp_people(mirrors: Path, teacher: Path, size: int, convention: str, per: int) -> tuple[list, list]:
    """CFP's frontal pictures cut as the embedder expects: ([crop], [person name])."""
    from cfp_eval import COMMIT, REPO, ROOT, find_faces
    from collection_sources import Repo

    from iznet.data.align import face_pixels

    repo = Repo(mirrors, REPO, COMMIT)
    files = {rel: sha for rel, sha, _ in repo.list(ROOT)}
    names = {}
    for k, line in enumerate(repo.read([files["Data/list_name.txt"]])[files["Data/list_name.txt"]].decode()
                             .splitlines()):
        if line.strip():
            names[f"{k + 1:03d}"] = line.strip()
    rels = sorted(r for r in files if r.startswith("Data/Images/") and "/frontal/" in r and r.endswith(".jpg"))
    rels = [r for r in rels if int(r.rsplit("/", 1)[1].split(".")[0]) <= per]
    imgs, boxes, points, _ = find_faces(repo, files, rels, teacher)
    crops = [face_pixels(imgs[r], boxes[r], points[r], size, convention) for r in rels]
    return crops, [names.get(r.split("/")[3], r.split("/")[3]) for r in rels]


def sheet_rows(rows, eval_img, train_img, path: Path, cell: int = 64) -> None:
    import cv2

    w = cell * 9 + 8
    canvas = np.full((len(rows) * (cell + 14), w, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        y = r * (cell + 14)
        cv2.putText(canvas, f"{row['set']}:{row['person']}  |  {row['train']}  d={row['distance']:.3f}",
                    (2, y + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        for j, im in enumerate(eval_img(row)[:4]):
            canvas[y + 14:y + 14 + cell, j * cell:(j + 1) * cell] = cv2.resize(im, (cell, cell))
        for j, im in enumerate(train_img(row)[:4]):
            x = (j + 5) * cell + 8
            canvas[y + 14:y + 14 + cell, x:x + cell] = cv2.resize(im, (cell, cell))
    cv2.imwrite(str(path), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-e", "--embedder", default="src/iznet/assets/embedder.pt")
    ap.add_argument("--train", type=Path, required=True, help="the collection's training pack")
    ap.add_argument("--eval", action="append", default=[], metavar="NAME=PACK", help="repeatable")
    ap.add_argument("--cfp", action="store_true", help="also CFP's frontal pictures (from the fetched snapshot)")
    ap.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    ap.add_argument("--teacher", type=Path, default=Path("../shared/models/face_detection_yunet_2026may.onnx"))
    ap.add_argument("--per", type=int, default=6, help="pictures per person (default 6)")
    ap.add_argument("--top", type=int, default=60, help="closest pairs on the contact sheets (default 60)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sheet-set", default="", help="contact sheets only for this set's people (e.g. cfp)")
    ap.add_argument("--sheet-range", default="", metavar="LO,HI",
                    help="contact sheets for the people whose nearest distance is in [LO, HI] (default: the --top closest)")
    ap.add_argument("--sheet-people", type=Path, default=None,
                    help="contact sheets only for the people listed in this file (one a line; '/' or '__' alike)")
    ap.add_argument("--sheet-k", type=int, default=1, help="rows per person on the sheets: its K nearest identities")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    if a.per < 4:
        sys.exit(f"--per {a.per}: the same-person reference splits a person's pictures in two halves; use 4 or more")
    sheet_range = (0.0, 2.0)
    if a.sheet_range:
        try:
            lo, hi = (float(v) for v in a.sheet_range.split(","))
        except ValueError:
            sys.exit(f"--sheet-range {a.sheet_range!r}: expected LO,HI distances, e.g. 0.6,0.75")
        sheet_range = (lo, hi)
    if a.sheet_people and not a.sheet_people.is_file():
        sys.exit(f"--sheet-people {a.sheet_people}: no such file (one person a line)")
    evals = []
    for spec in a.eval:
        name, sep, path = spec.partition("=")
        if not sep or not Path(path).is_file():
            sys.exit(f"--eval {spec!r}: expected NAME=PACK with an existing pack file")
        evals.append((name, Path(path)))
    if not a.train.is_file():
        sys.exit(f"--train {a.train}: no such pack (a collection's train_aligned112.pt, from `iznet data build`)")
    torch.set_num_threads(a.threads)
    from iznet.data.pack import load_pack
    from iznet.eval.analysis import person_centroids
    from iznet.loading import load_embedder
    from iznet.recognize.prototypes import centroid

    rng = np.random.default_rng(a.seed)
    emb = load_embedder(spec=a.embedder)
    cache = Cache(a.out / "cache.npz", "|".join([str(Path(a.embedder).resolve()), str(a.train.resolve()), str(a.per),
                                                 str(a.seed), *(f"{n}={p.resolve()}" for n, p in evals)]))
    train = load_pack(a.train)
    pick = sample_per_class(train.labels.numpy(), a.per, rng)
    t_idx = np.concatenate([pick[c] for c in sorted(pick)])
    t_own = np.concatenate([np.full(len(pick[c]), c) for c in sorted(pick)])
    print(f"embedding {len(t_idx)} training pictures of {len(pick)} identities", flush=True)
    E = cache.get("train", lambda: embed_pack(emb, train, t_idx))  # unit rows (the embedder's contract)
    C = person_centroids(E, t_own, len(train.classes))
    # references from the training people with 4+ pictures: two halves of one person, and one half to the nearest
    # other person (the centroid of the whole person stands for the others)
    halves_a, halves_b, who = [], [], []
    for c in sorted(pick):
        rows = np.flatnonzero(t_own == c)
        if len(rows) >= 4:
            h = len(rows) // 2
            halves_a.append(centroid(E[rows[:h]]))
            halves_b.append(centroid(E[rows[h:]]))
            who.append(c)
    HA, HB, who = np.stack(halves_a), np.stack(halves_b), np.array(who)
    same = np.linalg.norm(HA - HB, axis=1)
    _, diff = nearest(HA, C, exclude=who)
    diff = diff[:, 0]
    q = [0.01, 0.05, 0.5, 0.95, 0.99]
    ref = {"people": len(who), "same_person_halves": dict(zip(map(str, q), np.quantile(same, q).round(4).tolist())),
           "nearest_other_person": dict(zip(map(str, q), np.quantile(diff, q).round(4).tolist()))}
    print(f"references over {len(who)} training people with 4+ pictures: same person (two halves) median "
          f"{np.median(same):.3f}, 95th percentile {np.quantile(same, 0.95):.3f}; nearest other person 1st "
          f"percentile {np.quantile(diff, 0.01):.3f}, 5th {np.quantile(diff, 0.05):.3f}, median {np.median(diff):.3f}")

    people = []  # (set, person, unit centroid, images getter)
    for name, path in evals:
        pack = load_pack(path)
        ep = sample_per_class(pack.labels.numpy(), a.per, rng)
        idx = np.concatenate([ep[c] for c in sorted(ep)])
        own = np.concatenate([np.full(len(ep[c]), c) for c in sorted(ep)])
        print(f"embedding {len(idx)} pictures of {len(ep)} {name} people", flush=True)
        EE = cache.get(f"eval_{name}", lambda: embed_pack(emb, pack, idx))
        for c in sorted(ep):
            rows = own == c
            people.append((name, pack.classes[c], centroid(EE[rows]),
                           (lambda p=pack, i=idx[rows]: [x.permute(1, 2, 0).numpy() for x in p.decode(i)])))
    if a.cfp:
        from iznet.recognize.pipeline import crops_to_batch

        if "cfp_crops" not in cache.data:
            crops, owners = cfp_people(a.mirrors, a.teacher, int(emb.input_size), getattr(emb, "face_crop", "box"),
                                       a.per)
            cache.data["cfp_crops"], cache.data["cfp_owners"] = np.stack(crops), np.array(owners)
        crops, owners = cache.data["cfp_crops"], cache.data["cfp_owners"]
        print(f"embedding {len(crops)} CFP frontal pictures", flush=True)
        EE = cache.get("eval_cfp", lambda: emb.embed(crops_to_batch(list(crops)), batch_size=128))
        for nm in sorted(set(owners.tolist())):
            rows = np.flatnonzero(owners == nm)
            people.append(("cfp", nm, centroid(EE[rows]), (lambda r=rows: [crops[i] for i in r])))
    cache.save()
    P = np.array([p[2] for p in people], np.float32)
    nn, nd = nearest(P, C, k=min(len(C), max(5, a.sheet_k)))
    frac_diff = np.searchsorted(np.sort(diff), nd[:, 0]) / len(diff)
    frac_same = np.searchsorted(np.sort(same), nd[:, 0]) / len(same)
    rows = []
    for k, (s, person, _, _) in enumerate(people):
        j2 = min(1, nn.shape[1] - 1)  # a one-person training pack has no second
        rows.append({"set": s, "person": person, "train": train.classes[int(nn[k, 0])],
                     "distance": round(float(nd[k, 0]), 4), "second": train.classes[int(nn[k, j2])],
                     "second_distance": round(float(nd[k, j2]), 4),
                     "other_people_this_close": round(float(frac_diff[k]), 5),
                     "same_person_this_close": round(float(frac_same[k]), 4),
                     "neighbours": [[train.classes[int(j)], round(float(d), 4)] for j, d in zip(nn[k], nd[k])]})
    order = np.argsort([r["distance"] for r in rows])
    a.out.mkdir(parents=True, exist_ok=True)
    top = [int(i) for i in order[:a.top]]
    if a.sheet_set or a.sheet_range or a.sheet_people:
        lo, hi = sheet_range
        only = None
        if a.sheet_people:
            only = {ln.strip().replace("__", "/") for ln in a.sheet_people.read_text().splitlines() if ln.strip()}
        top = [int(i) for i in order if (not a.sheet_set or rows[i]["set"] == a.sheet_set)
               and lo <= rows[i]["distance"] <= hi and (only is None or rows[i]["person"] in only)]
    tag = f"{a.sheet_set or 'all'}_{a.sheet_range.replace(',', '-') or 'top'}"
    if a.sheet_people:
        tag += f"_{a.sheet_people.stem}"
    if a.sheet_k > 1:
        tag += f"_k{a.sheet_k}"
    cls = {c: i for i, c in enumerate(train.classes)}
    lines = [dict(rows[i], train=t, distance=d, index=i) for i in top for t, d in rows[i]["neighbours"][:a.sheet_k]]
    for s in range(0, len(lines), 20):
        sheet_rows(lines[s:s + 20], lambda r: people[r["index"]][3](),
                   lambda r: [x.permute(1, 2, 0).numpy() for x in train.decode(pick[cls[r["train"]]])],
                   a.out / f"sheet_{tag}_{s // 20 + 1:02d}.png")
    print(f"\n{'set':8} {'person':28} {'nearest training identity':32} {'dist':>6} {'2nd':>6} "
          f"{'others this close':>17} {'same-person halves this close':>29}")
    for i in top:
        r = rows[i]
        print(f"{r['set']:8} {r['person'][:28]:28} {r['train'][:32]:32} {r['distance']:6.3f} {r['second_distance']:6.3f} "
              f"{100 * r['other_people_this_close']:16.2f}% {100 * r['same_person_this_close']:28.1f}%")
    cuts = {}
    for cut in (0.005, 0.01, 0.05):
        cuts[str(cut)] = {s: int(sum(1 for r in rows if r["set"] == s and r["other_people_this_close"] <= cut))
                          for s in sorted({r["set"] for r in rows})}
    print("\nevaluation people whose nearest training identity is closer than this share of training people's "
          "nearest other person:", json.dumps(cuts))
    out = {"embedder": a.embedder, "train": str(a.train), "per": a.per, "seed": a.seed, "references": ref,
           "counts_by_cut": cuts, "people": [rows[i] for i in order]}
    (a.out / "overlap.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {a.out}/overlap.json and {(len(lines) + 19) // 20} contact sheets")


if __name__ == "__main__":
    main()
