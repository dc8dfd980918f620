"""Face clustering quality on an identity folder of face crops, iznet next to dlib in the same run.

Every picture of ``DATA/<person>/`` is one face (a crop; the face box is its centre square of side
1/--crop-scale of the picture: 1.3 for the project's box crops, 1.0 for tight aligned crops such as glint24).
Both systems embed all faces, the same clustering method groups them (each at its own distance threshold:
iznet's calibrated one, dlib's 0.6), and pairwise and BCubed precision / recall / F are computed against the
folders (iznet.eval.clustering). Times are for embedding and for clustering, per 1,000 faces.

    python scripts/cluster_eval.py --data collection/v2/heldout_box --crop-scale 1.3 -e src/iznet/assets/embedder.pt \
        --json runs/cluster_heldout.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from iznet.data.images import load_image
from iznet.eval.clustering import clustering_scores
from iznet.loading import load_embedder
from iznet.recognize.cluster import METHODS, cluster_faces


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--crop-scale", type=float, default=1.3)
    ap.add_argument("-e", "--embedder", default=None, help="iznet embedder (default: the bundled one)")
    ap.add_argument("--threshold", type=float, default=None, help="iznet threshold (default: its calibrated one)")
    ap.add_argument("--methods", default="agglomerative,chinese-whispers")
    ap.add_argument("--max-people", type=int, default=None)
    ap.add_argument("--no-dlib", action="store_true")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(1)
    from iznet.recognize import pipeline as pl

    people = sorted(d for d in a.data.iterdir() if d.is_dir())[: a.max_people]
    files = [(p.name, f) for p in people for f in sorted(p.iterdir()) if f.suffix.lower() in (".jpg", ".png")]
    truth = np.array([name for name, _ in files])
    imgs = [load_image(f) for _, f in files]
    emb = load_embedder(spec=a.embedder)
    thr = a.threshold if a.threshold is not None else emb.calibrated_threshold
    size = int(emb.input_size)
    import cv2

    t = time.perf_counter()
    batch = pl.crops_to_batch([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in imgs])
    systems = {"iznet": (np.asarray(emb.embed(batch, batch_size=64), dtype=np.float64), thr,
                         time.perf_counter() - t)}
    if not a.no_dlib:
        from iznet.reference.dlib_ref import DLIB_THRESHOLD, DlibResNetEncoder

        enc = DlibResNetEncoder()
        t = time.perf_counter()
        E = []
        for im in imgs:
            h, w = im.shape[:2]
            s = min(h, w) / a.crop_scale
            box = np.array([[(w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2]])
            E.append(enc.encode(im, box)[0])
        systems["dlib"] = (np.asarray(E, dtype=np.float64), DLIB_THRESHOLD, time.perf_counter() - t)
    out = {"command": "python scripts/cluster_eval.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in
                                                                   vars(a).items() if v not in (None, False)),
           "people": len(people), "faces": len(files), "systems": {}}
    print(f"{a.data}: {len(people)} people, {len(files)} faces")
    print("| system | method | threshold | clusters | unsorted | pairwise P / R / F | BCubed P / R / F | "
          "embed s/1k | cluster s/1k |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (E, t_sys, t_emb) in systems.items():
        for method in [m for m in a.methods.split(",") if m in METHODS]:
            t = time.perf_counter()
            labels = cluster_faces(E, method, threshold=t_sys, n_clusters=len(people))
            t_cl = time.perf_counter() - t
            s = clustering_scores(labels, truth)
            row = {**s, "threshold": t_sys, "unsorted": int((labels < 0).sum()),
                   "embed_s_per_1000": 1000 * t_emb / len(files), "cluster_s_per_1000": 1000 * t_cl / len(files)}
            out["systems"][f"{name}/{method}"] = row
            print(f"| {name} | {method} | {t_sys:.3f} | {s['clusters']} | {row['unsorted']} | "
                  f"{s['pairwise_precision']:.3f} / {s['pairwise_recall']:.3f} / {s['pairwise_f']:.3f} | "
                  f"{s['bcubed_precision']:.3f} / {s['bcubed_recall']:.3f} / {s['bcubed_f']:.3f} | "
                  f"{row['embed_s_per_1000']:.1f} | {row['cluster_s_per_1000']:.2f} |")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
