"""How well `iznet cluster` grouped an identity folder, end to end (detection included).

Input: the ``clusters.json`` that ``iznet cluster DATA/ -o OUT`` wrote for photos laid out as
``DATA/<person>/<image>`` (one person a photo, as glint24 or a collection's held-out folder). The truth of a
photo's most confident face is its folder; any other face of the photo is a stranger of its own (a false face
or a passer-by). Scores (iznet.eval.clustering) are given twice:
- over the faces found;
- over every photo, a photo whose face was not found counting as an unsorted face (a singleton): the number a
  user sees, since a missed face is a face left to sort by hand.

    OMP_NUM_THREADS=1 iznet cluster ../shared/data/glint24/images -o runs/cluster_glint24_e2e/out
    python scripts/cluster_outcome.py runs/cluster_glint24_e2e/out/clusters.json --json runs/cluster_glint24_e2e/outcome.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from iznet.eval.clustering import clustering_scores
from iznet.utils.io import write_json


def outcome(report: dict) -> dict:
    """Scores of one ``clusters.json`` report (see the module's docstring)."""
    faces = report["faces_list"]
    best: dict[str, dict] = {}
    for f in faces:
        if f["photo"] not in best or f["score"] > best[f["photo"]]["score"]:
            best[f["photo"]] = f
    pred, true = [], []
    for f in faces:
        pred.append(f["cluster"])
        true.append(Path(f["photo"]).parent.name if best[f["photo"]] is f else f"extra:{f['photo']}:{f['face']}")
    found = clustering_scores(np.array(pred), np.array(true))
    missed = [s["photo"] for s in report["skipped"] if s["reason"] == "no face found"]
    every = clustering_scores(np.array(pred + [-1] * len(missed)),
                              np.array(true + [Path(p).parent.name for p in missed]))
    photos = report["photos"]
    return {"photos": photos, "photos_with_a_face": len(best), "photos_missed": len(missed),
            "extra_faces": len(faces) - len(best), "headshot_faces": report.get("headshot_faces"),
            "threshold": report["threshold"], "method": report["method"], "embedder": report["embedder"],
            "found": found, "every_photo": every}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clusters", type=Path, help="clusters.json of `iznet cluster`")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    try:
        report = json.loads(a.clusters.read_text())
        res = outcome(report)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"error: {a.clusters}: not a readable clusters.json of `iznet cluster` ({e!r}); give the "
                         "file that `iznet cluster PHOTOS -o OUT` wrote in OUT") from None
    print(f"{res['photos']} photos: a face in {res['photos_with_a_face']} ({res['headshot_faces']} by the headshot "
          f"fallback), {res['photos_missed']} missed, {res['extra_faces']} extra faces")
    for k in ("found", "every_photo"):
        s = res[k]
        print(f"{k:12s} BCubed P/R/F {s['bcubed_precision']:.3f} / {s['bcubed_recall']:.3f} / {s['bcubed_f']:.3f}"
              f"   pairwise F {s['pairwise_f']:.3f}   {s['clusters']} clusters for {s['people']} people")
    if a.json:
        write_json(a.json, res)


if __name__ == "__main__":
    main()
