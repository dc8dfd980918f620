"""What a detector's false faces on faces-1750 are: unlabelled faces, loose boxes, or no face at all.

For the photos of one split, every box a detector keeps at its operating point (ours: confidence 0.3, at most
12; YuNet: 0.9) that matches no given face (the loose boxes mapped to the tight convention, IoU >= 0.5) is put
in one of three kinds:

- ``loose``: it overlaps a given face at IoU 0.3-0.5 (found, badly placed);
- ``teacher face``: it overlaps at IoU >= 0.5 a face the teacher (YuNet, run here at score >= ``--teacher-score``)
  finds and no given box covers (an unlabelled face: a false face only for the labels);
- ``other``: neither (a false face a person would also call false, mostly; see the contact sheet).

It also writes a contact sheet of the ``other`` boxes (with 25% context) to look at, and an AP in which the
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
import torch
from PIL import Image
from torchvision.ops import box_iou

from iznet.detect.data import photo_eval_set
from iznet.detect.evaluate import average_precision
from iznet.detect.pack import load_pack

KINDS = ("loose", "teacher face", "other")


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return box_iou(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)).numpy()


def unlabelled_faces(teacher: np.ndarray, given: np.ndarray, cover: float = 0.3) -> np.ndarray:
    """The teacher's boxes that no given face overlaps at IoU >= ``cover``."""
    if len(teacher) == 0:
        return teacher.reshape(0, 4)
    keep = _iou(teacher, given).max(axis=1, initial=0.0) < cover
    return teacher[keep]


def classify(boxes: np.ndarray, given: np.ndarray, extra: np.ndarray) -> list[str | None]:
    """Per kept box: None (a true face at IoU >= 0.5, greedy in the given order) or one of ``KINDS``."""
    out: list[str | None] = []
    iou_g, iou_e = _iou(boxes, given), _iou(boxes, extra)
    taken = np.zeros(len(given), dtype=bool)
    for i in range(len(boxes)):
        cand = np.where(taken, -1.0, iou_g[i]) if len(given) else np.zeros(0)
        j = int(np.argmax(cand)) if len(cand) else -1
        if j >= 0 and cand[j] >= 0.5:
            taken[j] = True
            out.append(None)
        elif len(given) and iou_g[i].max() >= 0.3:
            out.append("loose")
        elif len(extra) and iou_e[i].max() >= 0.5:
            out.append("teacher face")
        else:
            out.append("other")
    return out


def ap_ignoring(found: list, truth: list, ignore: list) -> float:
    """AP where detections on an ignored face (IoU >= 0.5, not a true face) are dropped from the ranking."""
    kept = []
    for (boxes, scores), gt, ign in zip(found, truth, ignore):
        boxes, scores = np.asarray(boxes).reshape(-1, 4), np.asarray(scores).reshape(-1)
        drop = np.zeros(len(boxes), dtype=bool)
        if len(ign) and len(boxes):
            on_true = _iou(boxes, gt).max(axis=1, initial=0.0) >= 0.5
            drop = (_iou(boxes, ign).max(axis=1) >= 0.5) & ~on_true
        kept.append((boxes[~drop], scores[~drop]))
    return average_precision(kept, truth)


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
        counts = {k: 0 for k in KINDS}
        n_true, others = 0, []
        for (img, gt), (boxes, scores), ex in zip(items, found, extras):
            boxes, scores = np.asarray(boxes).reshape(-1, 4), np.asarray(scores).reshape(-1)
            order = np.argsort(-scores, kind="stable")
            keep = order[scores[order] >= thr][:max_det] if max_det else order[scores[order] >= thr]
            for i, kind in zip(keep, classify(boxes[keep], gt, ex)):
                if kind is None:
                    n_true += 1
                else:
                    counts[kind] += 1
                    if kind == "other":
                        others.append((float(scores[i]), crop(img, boxes[i])))
        others.sort(key=lambda t: -t[0])
        name = Path(spec).stem if not spec.startswith("yunet:") else "yunet"
        contact_sheet([c for _, c in others], args.out / f"other_{name}.png")
        result["detectors"][spec] = {
            "operating_threshold": thr, "true faces": n_true, "false faces": counts,
            "false per photo": round(sum(counts.values()) / len(items), 3),
            "other per photo": round(counts["other"] / len(items), 3),
            "ap50": round(average_precision(found, truth), 4),
            "ap50 ignoring unlabelled teacher faces": round(ap_ignoring(found, truth, extras), 4),
            "other scores": [round(s, 3) for s, _ in others]}
        print(json.dumps({spec: {k: v for k, v in result["detectors"][spec].items() if k != "other scores"}}))
    (args.out / "false_faces.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
