"""Rank-1 on development people with the faces cut as the system cuts them: by the bundled detector.

The packs of the training collection hold crops cut around the teacher's box and landmarks (YuNet, at build
time). The system never sees those: it cuts each face around its own detector's box, or aligns it on its own
detector's landmarks. This script takes the development people of a collection pack (the people `iznet
train` held out of the run, seed 0: where settings are chosen), runs the detector on every picture (the
picture in the middle of a black canvas twice its size, as `benchmarks/bench_group.py` does; or with `--pad 0`
as `iznet enroll` and `iznet label` do: the canvas only when the picture alone shows no face), and scores each
embedder with k photos enrolled per person, on the teacher's crops and on the detector's:

    OMP_NUM_THREADS=1 python scripts/dev_detector_crops.py -e runs/coll_v2_box_tri/model.pt \\
        -e runs/coll_v2_aligned_ft/model.pt --json docs/results/embedder_v5/dev_detector_crops.json

Each embedder gets its own convention (box: the 1.3x box crop; aligned: the five landmarks on the template),
from the box pack and the aligned pack of the same collection.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def development_rows(pack: str, seed: int) -> np.ndarray:
    """Rows of ``pack`` that belong to the development people of a run on it."""
    from iznet.data.pack import load_pack
    from iznet.engine.data import build_train_data

    p = load_pack(pack)
    names = np.array([p.classes[int(lab)] for lab in p.labels])
    td = build_train_data(pack, seed=seed)
    idx = np.unique(np.concatenate([td.dev_pairs.idx1, td.dev_pairs.idx2]))
    return np.flatnonzero(np.isin(names, np.unique(names[idx])))


def save_crops(crops: list, names: np.ndarray, out: Path, conv: str, source: str) -> Path:
    """Write the detector's crops of the development people as a pack (``--part all`` reads them back)."""
    from iznet.data.pack import pack_images

    classes = sorted(set(names.tolist()))
    col = {n: i for i, n in enumerate(classes)}
    items = [(f"{n}/{i:05d}.jpg", col[n], np.ascontiguousarray(c)) for i, (n, c) in enumerate(zip(names, crops))]
    out.parent.mkdir(parents=True, exist_ok=True)
    pack_images(items, out, crops[0].shape[0], classes=classes, crop=None,
                meta={"crop": conv, "source": f"development people of {source}, cut by the bundled detector"})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-e", "--embedder", action="append", required=True, help="embedder checkpoint (repeatable)")
    ap.add_argument("--coll", default="collection/v2", help="collection folder (train_box112.pt, train_aligned112.pt)")
    ap.add_argument("--detector", default=None, help="detector checkpoint (default: the bundled one)")
    ap.add_argument("--pad", type=float, default=2.0, help="canvas side / picture side for detection; 0: the "
                    "pipeline's own way (the picture as it is, the padded canvas only when no face is found)")
    ap.add_argument("-k", type=int, default=5, help="photos enrolled per person")
    ap.add_argument("--seed", type=int, default=0, help="the training runs' seed (it picks the development people)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--untrained-by", default=None, metavar="PACK",
                    help="also score the development people a run on PACK (the same seed) did not train on: "
                    "those PACK lacks or holds out as its own development people (a model of an older collection)")
    ap.add_argument("--untrained-by-dev-people", type=Path, default=None, metavar="FILE",
                    help="with --untrained-by: the run on PACK held out the people of this file (its --dev-people) "
                    "rather than a random draw with --seed")
    ap.add_argument("--save-pack", type=Path, default=None, metavar="DIR",
                    help="also write the detector's crops as packs DIR/dev_detector_<crop>112.pt (one per crop "
                    "convention; pictures with no face found keep the whole picture), for scripts/openset_rules.py")
    a = ap.parse_args()
    other_dev_people = None
    if a.untrained_by_dev_people is not None:
        if not a.untrained_by:
            ap.error("--untrained-by-dev-people goes with --untrained-by PACK")
        from iznet.engine.data import read_people_list
        from iznet.errors import DataError

        try:
            other_dev_people = set(read_people_list(a.untrained_by_dev_people))
        except DataError as e:
            ap.error(str(e))
    torch.set_num_threads(1)

    from iznet.data.align import face_pixels
    from iznet.data.pack import load_pack
    from iznet.eval.group import PaddedDetector
    from iznet.eval.identification import closed_set_identification
    from iznet.loading import load_detector, load_embedder
    from iznet.recognize.faces import detect_faces_with_landmarks

    box_pack, al_pack = f"{a.coll}/train_box112.pt", f"{a.coll}/train_aligned112.pt"
    rows = development_rows(box_pack, a.seed)
    box, al = load_pack(box_pack), load_pack(al_pack)
    names = np.array([box.classes[int(box.labels[i])] for i in rows])
    teacher = {"box": box.decode(rows), "aligned": al.decode(np.array([al.index_of(box.paths[i]) for i in rows]))}
    pictures = teacher["box"].permute(0, 2, 3, 1).numpy()  # the box crops are the pictures the detector sees
    from iznet.recognize.faces import NO_FACE_RETRY_PAD

    inner = load_detector(spec=a.detector, runtime="torch")
    det, retry = (PaddedDetector(inner, a.pad), None) if a.pad >= 1 else (inner, NO_FACE_RETRY_PAD)
    t0 = time.time()
    found = []
    for im in pictures:  # the detected face nearest the picture's centre
        b, _, pts = detect_faces_with_landmarks(det, im, retry_pad=retry)
        if len(b) == 0:
            found.append(None)
            continue
        c = (b[:, :2] + b[:, 2:]) / 2
        i = int(np.argmin(((c - np.array(im.shape[1::-1]) / 2) ** 2).sum(1)))
        found.append((b[i], None if pts is None else pts[i]))
    print(f"{len(rows)} pictures of {len(set(names))} development people; a face found in "
          f"{sum(f is not None for f in found)} ({time.time() - t0:.0f} s)", file=sys.stderr)

    # the teacher's tight box in a box crop is the centred square of side S / 1.3 (iznet.data.crops)
    from iznet.data.crops import FACE_CROP_SCALE

    side = pictures.shape[1] / FACE_CROP_SCALE
    ratio = np.array([max(f[0][2] - f[0][0], f[0][3] - f[0][1]) / side for f in found if f is not None])
    results = {"command": "python scripts/dev_detector_crops.py " + " ".join(sys.argv[1:]), "k": a.k, "pad": a.pad,
               "people": len(set(names)), "pictures": len(rows),
               "faces_found": sum(f is not None for f in found),
               "box_side_over_teacher": {"median": float(np.median(ratio)),
                                         "quartiles": np.percentile(ratio, [25, 75]).round(4).tolist()},
               "embedders": {}}
    print(f"detector's box side / teacher's: median {np.median(ratio):.3f}, quartiles "
          f"{np.percentile(ratio, 25):.3f} and {np.percentile(ratio, 75):.3f}", file=sys.stderr)
    subsets = {"": np.ones(len(names), bool)}
    if a.untrained_by:
        other = load_pack(a.untrained_by)
        other_names = {other.classes[int(lab)] for lab in other.labels}
        if other_dev_people is not None:  # the run named its development people (iznet train --dev-people)
            other_dev = other_dev_people
        else:
            other_dev = {other.classes[int(other.labels[i])] for i in development_rows(a.untrained_by, a.seed)}
        keep = np.array([n not in other_names or n in other_dev for n in names])
        subsets["_untrained_by_other"] = keep
        results["untrained_by_other"] = {"pack": a.untrained_by, "people": len(set(names[keep].tolist())),
                                         "pictures": int(keep.sum())}
        print(f"{len(set(names[keep].tolist()))} of the people ({int(keep.sum())} pictures) are not trained on by a "
              f"run on {a.untrained_by}", file=sys.stderr)
    saved: dict[str, Path] = {}
    for spec in a.embedder:
        emb = load_embedder(spec=spec, runtime="torch")
        conv = getattr(emb, "face_crop", "box")
        cut = [face_pixels(im, f[0], f[1], emb.input_size, conv) if f is not None else im
               for im, f in zip(pictures, found)]
        detected = torch.from_numpy(np.stack(cut)).permute(0, 3, 1, 2).contiguous()
        row = {"crop": conv}
        if a.save_pack and conv not in saved:
            saved[conv] = save_crops(cut, names, a.save_pack / f"dev_detector_{conv}112.pt", conv, box_pack)
            print(f"wrote {saved[conv]}", file=sys.stderr)
        for what, images in (("teacher_crops", teacher[conv]), ("detector_crops", detected)):
            e = emb.embed(images)
            for suffix, m in subsets.items():
                r = closed_set_identification(e[m], names[m], a.k, ("nn", "centroid", "medoid"))["rank1"]
                row[what + suffix] = r
                print(f"{spec} ({conv}) {what}{suffix}: " + ", ".join(f"{k} {v:.3f}" for k, v in r.items()))
        results["embedders"][spec] = row
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
