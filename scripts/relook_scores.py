"""Can a second look re-score the detector's candidates? (An experiment on the faces-1750 photos.)

The second look at small faces (:mod:`iznet.detect.relook`) re-reads each face on a square of 3x its box,
resized to the detector's input, for its landmarks. The same look also gives a score: how sure the detector is
of that face when it sees it large. This script asks whether that score ranks faces and non-faces better than
the first look's, which would raise AP@0.5 (the detector's gap to YuNet, docs/detection.md) and drop boxes on
no face. For every candidate of the first look (the detector as users run it, four passes, here down to
``--min-score``), the square is cut and looked at once; its score is that of the face found there that
overlaps the candidate (IoU >= 0.3 once mapped back), 0 when none does. Fused scores are then ranked in place
of the first look's, for the candidates seen under ``below`` input pixels (the others keep theirs):

- ``first``: the first look's score (the detector today);
- ``second``: the second look's alone;
- ``mean``: the mean of the two; ``geo``: their geometric mean; ``min``: the lower of the two.

AP@0.5, recall and precision at the operating point (0.3, at most 12 faces) against the given boxes. Choose on
the development photos (the default); ``--split test`` only to report a choice made there::

    OMP_NUM_THREADS=2 python scripts/relook_scores.py --pack packs/det_train.pt --split dev \\
        --json docs/results/relook_scores/dev.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

FUSIONS = ("first", "second", "mean", "geo", "min")


def fuse(s1: np.ndarray, s2: np.ndarray, how: str) -> np.ndarray:
    """The fused score of candidates with first-look scores ``s1`` and second-look scores ``s2``."""
    if how == "first":
        return s1
    if how == "second":
        return s2
    if how == "mean":
        return (s1 + s2) / 2
    if how == "geo":
        return np.sqrt(s1 * s2)
    if how == "min":
        return np.minimum(s1, s2)
    raise ValueError(how)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pack", required=True, help="detection pack (packs/det_train.pt holds the dev split)")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--detector", default=None, help="detector checkpoint (default: the bundled one)")
    ap.add_argument("--min-score", type=float, default=0.05, help="candidates at least this sure are looked at again")
    ap.add_argument("--below", default="64,128,100000", help="seen-side limits to score (input pixels)")
    ap.add_argument("--zoom", type=float, default=3.0)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(2)

    from iznet.detect.data import photo_eval_set
    from iznet.detect.evaluate import evaluate_detections
    from iznet.detect.pack import load_pack
    from iznet.detect.relook import pick_face, seen_sides, square_around
    from iznet.detect.train import AP_POSTPROCESS
    from iznet.loading import load_detector
    from iznet.utils.assets import default_detector_spec

    spec = a.detector or default_detector_spec()
    first = load_detector(spec=spec, runtime="torch", relook=False)
    second = load_detector(spec=spec, runtime="torch", tta="off", relook=False)
    operating = first.config
    first.config = second.config = AP_POSTPROCESS
    items = photo_eval_set(load_pack(a.pack), a.split, truth="given_tight")
    t0 = time.time()
    rows = []  # per image: boxes, s1, s2, seen
    for img, _ in items:
        boxes, s1 = first.detect(img).numpy()
        s2 = np.zeros_like(s1)
        seen = seen_sides(boxes, (img.shape[1], img.shape[0]), first.model.image_size)
        look = np.flatnonzero(s1 >= a.min_score)
        cut = [square_around(img, boxes[i], a.zoom) for i in look]
        found = second.detect_batch([c[0] for c in cut]) if cut else []
        for i, (_, origin), f in zip(look, cut, found):
            b, s = f.numpy()
            k = pick_face(boxes[i], b + np.tile(origin, 2), (boxes[i, :2] + boxes[i, 2:]) / 2, 0.3)
            s2[i] = s[k] if k >= 0 else 0.0
        rows.append((boxes, s1, s2, seen, look))
    print(f"{len(items)} photos, {sum(len(r[4]) for r in rows)} candidates looked at again "
          f"({time.time() - t0:.0f} s)", file=sys.stderr)
    truth = [g for _, g in items]
    results = {"command": "python scripts/relook_scores.py " + " ".join(sys.argv[1:]), "split": a.split,
               "photos": len(items), "min_score": a.min_score, "zoom": a.zoom, "scores": {}}
    for below in [float(x) for x in a.below.split(",")]:
        for how in FUSIONS:
            ranked = []
            for boxes, s1, s2, seen, look in rows:
                s = s1.copy()
                m = np.zeros(len(s1), bool)
                m[look] = True
                m &= seen < below
                s[m] = fuse(s1[m], s2[m], how)
                order = np.argsort(-s, kind="stable")
                ranked.append((boxes[order], s[order]))
            r = evaluate_detections(ranked, truth, operating.conf_threshold, operating.max_detections).to_dict()
            key = f"below {below:g} {how}"
            results["scores"][key] = {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}
            print(key, json.dumps(results["scores"][key]), file=sys.stderr)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
