"""What a detector's false faces on faces-1750 are: unlabelled faces, loose boxes, or no face at all.

For the photos of one split, every box a detector keeps at its operating point (ours: confidence 0.3, at most
12; YuNet: 0.9) that matches no given face (the loose boxes mapped to the tight convention, IoU >= 0.5) is put
in one of three kinds:

- ``loose``: it overlaps a given face at IoU 0.3-0.5 (found, badly placed);
- ``unlabelled face``: it overlaps at IoU >= 0.5 a face the teacher (YuNet, run here at score >=
  ``--teacher-score``) finds and no given box covers (a false face only for the labels);
- ``no face``: neither (a false face a person would also call false, mostly; see the contact sheet).

(``iznet.detect.evaluate.false_face_kinds``.) It also writes a contact sheet of the ``no face`` boxes (with 25% context) to look at, and an AP in which the
teacher's unlabelled faces are *ignored* (boxes on them count neither way), next to the plain AP: how much of a
detector's AP on this truth is spent on faces the labels lack.

    OMP_NUM_THREADS=1 python scripts/detector_false_faces.py --pack packs/det_train.pt --split dev \\
        --detector src/iznet/assets/detector.pt --yunet ../shared/models/face_detection_yunet_2026may.onnx \\
        --out runs/false_faces_dev
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from iznet.detect.data import photo_eval_set
from iznet.detect.evaluate import (FALSE_FACE_KINDS, ap_ignoring, average_precision, false_face_kinds, false_faces,
                                   operating_point, unlabelled_faces)
from iznet.detect.pack import load_pack

def contact_sheet(crops: list[np.ndarray], path: Path, side: int = 96, cols: int = 10) -> None:
    if not crops:
        return
    rows = (len(crops) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * side, rows * side), (255, 255, 255))
    for i, c in enumerate(crops):
        sheet.paste(Image.fromarray(c).resize((side, side)), ((i % cols) * side, (i // cols) * side))
    sheet.save(path)


def crop(img: np.ndarray, box: np.ndarray, context: float = 0.25) -> np.ndarray:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    xa, ya = int(max(0, x1 - context * w)), int(max(0, y1 - context * h))
    xb, yb = int(min(img.shape[1], x2 + context * w)), int(min(img.shape[0], y2 + context * h))
    return np.ascontiguousarray(img[ya:max(yb, ya + 1), xa:max(xb, xa + 1)])


def main(argv: list[str] | None = None) -> dict:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_detect import make_detector  # noqa: E402  (the benchmark's own detector set-up)

    from iznet.detect.teachers import YuNetDetector

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pack", required=True)
    ap.add_argument("--split", default="dev")
    ap.add_argument("--detector", action="append", required=True, help="checkpoint | yunet:PATH (repeat)")
    ap.add_argument("--tta", default="full")
    ap.add_argument("--yunet", required=True, help="the teacher's ONNX file (finds the unlabelled faces)")
    ap.add_argument("--teacher-score", type=float, default=0.5)
    ap.add_argument("--out", type=Path, required=True, help="folder for the JSON and the contact sheets")
    ap.add_argument("--conf", type=float, action="append", default=None,
                    help="also count at these confidence thresholds (repeat; our detectors only)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    items = photo_eval_set(load_pack(args.pack), args.split, truth="given_tight")
    teacher = YuNetDetector(args.yunet, score_threshold=args.teacher_score)
    extras = [unlabelled_faces(teacher.detect(img).numpy()[0].reshape(-1, 4), gt) for img, gt in items]
    truth = [gt for _, gt in items]
    result = {"pack": args.pack, "split": args.split, "photos": len(items), "given faces": int(sum(map(len, truth))),
              "unlabelled teacher faces": int(sum(map(len, extras))), "teacher_score": args.teacher_score,
              "detectors": {}}
    for spec in args.detector:
        det, thr, max_det = make_detector(spec, "cpu", args.tta)
        found = [det.detect(img).numpy()[:2] for img, _ in items]
        counts = {k: 0 for k in FALSE_FACE_KINDS}
        n_true, others = 0, []
        for (img, gt), (boxes, scores), ex in zip(items, operating_point(found, thr, max_det), extras):
            for box, score, kind in zip(boxes, scores, false_face_kinds(boxes, scores, gt, ex)):
                if kind is None:
                    n_true += 1
                else:
                    counts[kind] += 1
                    if kind == "no face":
                        others.append((float(score), crop(img, box)))
        others.sort(key=lambda t: -t[0])
        name = f"{Path(spec).parent.name}_{Path(spec).stem}" if not spec.startswith("yunet:") else "yunet"
        contact_sheet([c for _, c in others], args.out / f"no_face_{name}.png")
        result["detectors"][spec] = {
            "operating_threshold": thr, "true faces": n_true, "false faces": counts,
            "false per photo": round(sum(counts.values()) / len(items), 3),
            "no face per photo": round(counts["no face"] / len(items), 3),
            "ap50": round(average_precision(found, truth), 4),
            "ap50 ignoring unlabelled teacher faces": round(ap_ignoring(found, truth, extras), 4),
            "no face scores": [round(s, 3) for s, _ in others]}
        if args.conf and not spec.startswith("yunet:"):
            sweep = {}
            for t in args.conf:
                kept = operating_point(found, t, max_det)
                n_false = false_faces(kept, truth, extras)
                sweep[str(t)] = {"true faces": int(sum(len(b) for b, _ in kept)) - sum(n_false.values()),
                                 "false faces": n_false}
            result["detectors"][spec]["by threshold"] = sweep
        print(json.dumps({spec: {k: v for k, v in result["detectors"][spec].items() if k != "no face scores"}}))
    (args.out / "false_faces.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
