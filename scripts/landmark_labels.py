"""Teacher landmark labels for the detector's landmark branch (YuNet's five points, on a padded canvas).

Images and splits:
- faces-1750 photos (group and street photos): the detector pack's split (``split_names``, seed 0: 20% test,
  10% dev), so the test photos are the ones the detector's AP is measured on;
- identity photos of the training collection (FIW, FIW-Kaggle, Pins, LAG; headshots and tight crops of
  many populations): ``train`` for identities in the collection's train part, ``test`` for its held-out
  people; at most ``--per-person`` photos each, the first in file order.

Usage:
    python scripts/landmark_labels.py --yunet ../shared/models/face_detection_yunet_2023mar.onnx \
        --faces ../shared/data/faces-1750 --collection collection/v2 --raw collection/raw \
        --out packs/landmarks_v1.npz
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from iznet.data.collection import normalise_name  # noqa: E402
from iznet.detect.landmark_train import LandmarkLabels, label_images  # noqa: E402
from iznet.detect.pack import split_names  # noqa: E402
from iznet.detect.teachers import YuNetDetector  # noqa: E402

NAMED = {"pins", "lag"}  # sources whose folder is a person's name (identity key = the normalised name)


def collection_images(collection: Path, raw: Path, per_person: int, sources: list[str]) -> tuple[list, list, dict]:
    part = {}
    with open(collection / "identities.csv", newline="") as f:
        for row in csv.DictReader(f):
            part[row["identity"]] = row["part"]
    paths, splits, counts = [], [], {}
    for src in sources:
        root = raw / src
        n = {"train": 0, "test": 0, "unknown identity": 0}
        for person in sorted(p for p in root.iterdir() if p.is_dir()):
            key = normalise_name(person.name) if src in NAMED else f"{src}/{person.name}"
            if key not in part:
                n["unknown identity"] += 1
                continue
            split = "train" if part[key] == "train" else "test"
            files = sorted(f for f in person.iterdir() if f.suffix.lower() in {".jpg", ".jpeg", ".png"})[:per_person]
            for f in files:
                paths.append(str(f))
                splits.append(split)
                n[split] += 1
        counts[src] = n
    return paths, splits, counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--yunet", required=True)
    ap.add_argument("--faces", required=True, help="faces-1750 folder (boxes.csv, images/)")
    ap.add_argument("--collection", required=True, help="a built collection (identities.csv)")
    ap.add_argument("--raw", required=True, help="the collection's raw sources (collection/raw)")
    ap.add_argument("--sources", default="fiw,fiw_kaggle,pins,lag")
    ap.add_argument("--per-person", type=int, default=2)
    ap.add_argument("--min-score", type=float, default=0.7)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    faces = Path(args.faces)
    with open(faces / "boxes.csv", newline="") as f:
        names = sorted({row["image"] for row in csv.DictReader(f)})
    fsplit = split_names(names, seed=0, dev=0.1, test=0.2)
    paths = [str(faces / "images" / n) for n in names]
    splits = [fsplit[n] for n in names]
    cpaths, csplits, counts = collection_images(Path(args.collection), Path(args.raw), args.per_person,
                                                [s for s in args.sources.split(",") if s])
    teacher = YuNetDetector(args.yunet, score_threshold=0.5)
    labels, skipped = label_images(paths + cpaths, splits + csplits, teacher, args.min_score)
    labels.meta = {"teacher": Path(args.yunet).name, "min_score": args.min_score, "faces_1750": str(faces),
                   "collection": str(args.collection), "per_person": args.per_person, "sources": counts,
                   "skipped": skipped}
    labels.save(args.out)
    for s in ("train", "dev", "test"):
        part = labels.select(s)
        print(f"{s}: {len(part)} images, {part.faces()} faces")
    print("collection images per source:", counts)
    print("skipped:", skipped)
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
