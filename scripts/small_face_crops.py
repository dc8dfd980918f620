"""How much recognition loses when faces are small in the detector's view, as in a group photo.

`scripts/dev_detector_crops.py` cuts the development people's faces from pictures a face fills; there the
bundled detector's landmarks align as well as the teacher's. In a group photo the detector sees each face at a
fraction of that size (it reads the whole photo at 416 pixels) and its landmarks are far coarser
(docs/detection.md: median error 0.14-0.26 of the eye distance below 24 pixels). This script puts the same
pictures, at their own resolution, nine to a grey "group photo" whose side is ``3 x spread x`` a picture's, so
that only what the detector sees shrinks, not the pixels the embedder gets, and scores with k photos enrolled:

- ``alone``: each picture detected on its own (the pipeline's way, as dev_detector_crops.py --pad 0);
- ``group``: the faces found in the group photo, cut on the landmarks found there;
- ``relook``: the same faces after the detector's second look at small faces (:mod:`iznet.detect.relook`:
  a square of ``zoom`` x the box around each face, seen large, gives the landmarks; boxes and faces found stay
  those of the group photo), for every zoom and test-time augmentation of ``--relook`` (every face looked
  at again, whatever its size: the rows by spread say which sizes gain);
- ``teacher``: the collection's aligned crops (the teacher's landmarks on the original photo).

It also reports each condition's landmark error against the ``alone`` landmarks (the reference: they align
as well as the teacher's) by the reference eye distance. Settings are chosen on the development people
(``--part dev``, the default); ``--part heldout`` scores the collection's held-out people once, as a test::

    OMP_NUM_THREADS=2 python scripts/small_face_crops.py -e src/iznet/assets/embedder.pt --spread 1,2,3,4,6 \\
        --relook 3:off,4.5:off,6:off,4.5:full --json docs/results/small_faces/dev.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dev_detector_crops import development_rows  # noqa: E402

GRID = 3  # pictures per side of a group photo


def nearest(boxes: np.ndarray, centre: np.ndarray, inside: tuple[float, float, float, float] | None = None) -> int:
    """Index of the box whose centre is nearest ``centre`` (-1 when none, or none with its centre ``inside``)."""
    if len(boxes) == 0:
        return -1
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    d = ((c - centre) ** 2).sum(1)
    if inside is not None:
        x0, y0, x1, y1 = inside
        ok = (c[:, 0] >= x0) & (c[:, 0] < x1) & (c[:, 1] >= y0) & (c[:, 1] < y1)
        d = np.where(ok, d, np.inf)
    i = int(np.argmin(d))
    return i if np.isfinite(d[i]) else -1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-e", "--embedder", required=True, help="embedder checkpoint (an aligned model)")
    ap.add_argument("--coll", default="collection/v2")
    ap.add_argument("--detector", default=None, help="detector checkpoint (default: the bundled one)")
    ap.add_argument("--spread", default="1,2,3,4", help="group photo side / (3 x picture side), comma-separated")
    ap.add_argument("--relook", default="4.5:off", help="second looks to score, ZOOM:TTA, comma-separated")
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="the training runs' seed (development people)")
    ap.add_argument("--part", choices=("dev", "heldout"), default="dev",
                    help="dev: the development people of the training packs (choose settings here); heldout: the "
                    "collection's held-out people with 6 or more pictures (a test: the 180 of bench_group)")
    ap.add_argument("--limit", type=int, default=0, help="first N pictures only (0: all)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(2)

    from iznet.data.align import face_pixels
    from iznet.data.pack import load_pack
    from iznet.detect.relook import relook_found
    from iznet.detect.settings import RelookConfig
    from iznet.eval.identification import closed_set_identification
    from iznet.loading import load_detector, load_embedder
    from iznet.recognize.faces import NO_FACE_RETRY_PAD, detect_faces_with_landmarks

    part = "train" if a.part == "dev" else "heldout"
    box_pack, al_pack = f"{a.coll}/{part}_box112.pt", f"{a.coll}/{part}_aligned112.pt"
    box, al = load_pack(box_pack), load_pack(al_pack)
    if a.part == "dev":
        rows = development_rows(box_pack, a.seed)
    else:
        counts = np.bincount(box.labels.numpy(), minlength=len(box.classes))
        rows = np.flatnonzero(counts[box.labels.numpy()] >= 6)
    if a.limit:
        rows = rows[:a.limit]
    names = np.array([box.classes[int(box.labels[i])] for i in rows])
    pictures = box.decode(rows).permute(0, 2, 3, 1).numpy()
    teacher = al.decode(np.array([al.index_of(box.paths[i]) for i in rows]))
    det = load_detector(spec=a.detector, runtime="torch", relook=False)  # the first look, as the pipeline's
    looks = {}
    for item in a.relook.split(","):
        try:
            zoom, tta = item.split(":")
            cfg = RelookConfig(zoom=float(zoom), below=1e9, tta=tta)
        except ValueError as e:
            ap.error(f"--relook {item!r}: give ZOOM:TTA such as 3:off ({e})")
        looks[item] = (cfg, load_detector(spec=a.detector, runtime="torch", tta=tta, relook=False))
    emb = load_embedder(spec=a.embedder, runtime="torch")
    if getattr(emb, "face_crop", "box") != "aligned":
        ap.error(f"{a.embedder} is not an aligned embedder: landmarks do not change its crops")
    n, p = len(rows), pictures.shape[1]

    # the reference: each picture alone, as the pipeline detects it
    t0 = time.time()
    ref: list[tuple[np.ndarray, np.ndarray] | None] = []
    for im in pictures:
        b, _, pts = detect_faces_with_landmarks(det, im, retry_pad=NO_FACE_RETRY_PAD)
        i = nearest(b, np.array([p / 2, p / 2]))
        ref.append(None if i < 0 or pts is None else (b[i], pts[i]))
    print(f"{n} pictures of {len(set(names))} {a.part} people; alone: a face in "
          f"{sum(r is not None for r in ref)} ({time.time() - t0:.0f} s)", file=sys.stderr)

    def score(crops: list[np.ndarray]) -> dict:
        x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
        return closed_set_identification(emb.embed(x), names, a.k, ("nn", "centroid", "medoid"))["rank1"]

    def nme(points: list[np.ndarray | None]) -> dict:
        err = []
        for r, q in zip(ref, points):
            if r is None or q is None:
                continue
            iod = float(np.linalg.norm(r[1][0] - r[1][1]))
            err.append(float(np.linalg.norm(q - r[1], axis=1).mean()) / max(iod, 1e-6))
        e = np.array(err)
        return {"faces": len(e), "median": round(float(np.median(e)), 4),
                "under_0.1": round(float((e < 0.1).mean()), 4)}

    alone = [face_pixels(im, r[0], r[1], emb.input_size, "aligned") if r else im for im, r in zip(pictures, ref)]
    results = {"command": "python scripts/small_face_crops.py " + " ".join(sys.argv[1:]), "k": a.k, "part": a.part,
               "people": len(set(names)), "pictures": n,
               "teacher": score([t.permute(1, 2, 0).numpy() for t in teacher]), "alone": score(alone), "spread": {}}
    print(f"teacher {results['teacher']}\nalone {results['alone']}", file=sys.stderr)
    rng = np.random.default_rng(0)
    for spread in [float(s) for s in a.spread.split(",")]:
        cell = int(round(spread * p))
        side = GRID * cell
        found: list[tuple[np.ndarray, np.ndarray] | None] = [None] * n
        again: dict[str, list[np.ndarray | None]] = {key: [None] * n for key in looks}
        t0 = time.time()
        for start in range(0, n, GRID * GRID):
            group = np.full((side, side, 3), 118, np.uint8)
            spots = {}
            for j, i in enumerate(range(start, min(start + GRID * GRID, n))):
                ox = (j % GRID) * cell + int(rng.integers(0, cell - p + 1))
                oy = (j // GRID) * cell + int(rng.integers(0, cell - p + 1))
                group[oy:oy + p, ox:ox + p] = pictures[i]
                spots[i] = (ox, oy)
            first = det.detect(group)
            b = first.xyxy.numpy()
            second = {key: relook_found(lambda sq, d=d: d.detect_batch(sq), [group], [first], 416, cfg)[0]
                      for key, (cfg, d) in looks.items()}
            for i, (ox, oy) in spots.items():
                k = nearest(b, np.array([ox + p / 2, oy + p / 2]), (ox, oy, ox + p, oy + p))
                if k < 0 or first.landmarks is None:
                    continue
                found[i] = (b[k] - [ox, oy, ox, oy], first.landmarks.numpy()[k] - [ox, oy])
                for key, f in second.items():
                    again[key][i] = np.asarray(f.landmarks)[k] - [ox, oy]
        # the picture's own pixels, as they sit in the group photo (the grey beyond its edges is not used:
        # the faces are aligned inside their own picture, black outside, as for ``alone``)
        grp = [face_pixels(im, f[0], f[1], emb.input_size, "aligned") if f else im for im, f in zip(pictures, found)]
        row = {"group_side": side, "face_side_seen": round(0.77 * p * 416 / side, 1),
               "faces_found": sum(f is not None for f in found), "group": score(grp),
               "nme_group": nme([f[1] if f else None for f in found])}
        for key, pts in again.items():
            crops = [face_pixels(im, f[0], q, emb.input_size, "aligned") if f else im
                     for im, f, q in zip(pictures, found, pts)]
            row[f"relook {key}"] = score(crops)
            row[f"nme_relook {key}"] = nme(pts)
        results["spread"][f"{spread:g}"] = row
        print(f"spread {spread:g} ({time.time() - t0:.0f} s): {json.dumps(row)}", file=sys.stderr)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
