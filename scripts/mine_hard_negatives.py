"""Mine hard negatives for the detector: boxes it takes for faces, on training photos, where no face is.

Runs a detector (one pass, at confidence ``--conf``) over the pack's photos of ``--split`` and keeps each box
that is no face by every account the pack and the teacher give:

- its centre lies in no face box of the photo (the reconciled labels, the given boxes mapped to the tight
  convention, and the ``avoid`` boxes: every labelled or teacher face, grown by 20%),
- it overlaps none of them at IoU >= ``--max-iou``,
- and the teacher (YuNet at score >= ``--teacher-score``) finds no face overlapping it at IoU >= 0.3.

Writes ``{"boxes": {photo name: [[x1, y1, x2, y2], ...]}, "scores": {...}, "counts": {...}, ...}`` (stored-image
pixels), the file ``iznet train-detector --hard-negatives`` reads.

    OMP_NUM_THREADS=1 python scripts/mine_hard_negatives.py --pack packs/det_train.pt --split train \\
        --detector src/iznet/assets/detector.pt --yunet ../shared/models/face_detection_yunet_2026may.onnx \\
        --out packs/hard_negatives_train.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import box_iou

from iznet.detect.data import decode_image
from iznet.detect.detector import load_detector
from iznet.detect.pack import load_pack
from iznet.detect.postprocess import PostprocessConfig


def no_face_there(boxes: np.ndarray, faces: np.ndarray, teacher: np.ndarray, max_iou: float = 0.1) -> np.ndarray:
    """(P,) bool: box centre inside no face, IoU < ``max_iou`` with every face, IoU < 0.3 with the teacher's."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    keep = np.ones(len(boxes), dtype=bool)
    faces = np.asarray(faces, np.float64).reshape(-1, 4)
    teacher = np.asarray(teacher, np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return keep
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    for f in faces:
        keep &= ~((cx >= f[0]) & (cx <= f[2]) & (cy >= f[1]) & (cy <= f[3]))
    b = torch.from_numpy(boxes)
    if len(faces):
        keep &= box_iou(b, torch.from_numpy(faces)).numpy().max(axis=1) < max_iou
    if len(teacher):
        keep &= box_iou(b, torch.from_numpy(teacher)).numpy().max(axis=1) < 0.3
    return keep


def main(argv: list[str] | None = None) -> dict:
    from iznet.detect.teachers import YuNetDetector

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pack", required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--detector", required=True, help="our detector checkpoint")
    ap.add_argument("--yunet", required=True, help="the teacher's ONNX file")
    ap.add_argument("--conf", type=float, default=0.1, help="mine boxes at this confidence and above")
    ap.add_argument("--teacher-score", type=float, default=0.3)
    ap.add_argument("--max-iou", type=float, default=0.1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    photos = load_pack(args.pack).select_photos(args.split)
    if not photos:
        sys.exit(f"{args.pack} holds no {args.split!r} photos")
    det = load_detector(args.detector, tta="off")
    det.config = PostprocessConfig(conf_threshold=args.conf, iou_threshold=0.4, max_detections=100)
    teacher = YuNetDetector(args.yunet, score_threshold=args.teacher_score)
    boxes_out: dict[str, list] = {}
    scores_out: dict[str, list] = {}
    found = 0
    for ph in photos:
        img = decode_image(ph.jpeg).permute(1, 2, 0).numpy()
        boxes, scores = det.detect(img).numpy()
        found += len(boxes)
        faces = np.concatenate([np.asarray(a, np.float32).reshape(-1, 4) for a in (ph.boxes, ph.given_tight, ph.avoid)])
        keep = no_face_there(boxes, faces, teacher.detect(img).numpy()[0], args.max_iou)
        if keep.any():
            boxes_out[ph.name] = [[round(float(v), 1) for v in b] for b in boxes[keep]]
            scores_out[ph.name] = [round(float(s), 3) for s in scores[keep]]
    all_scores = [s for v in scores_out.values() for s in v]
    counts = {"photos": len(photos), "boxes found": found, "hard negatives": len(all_scores),
              "photos with one": len(boxes_out),
              "at confidence >= 0.3": int(sum(s >= 0.3 for s in all_scores))}
    result = {"command": "python scripts/mine_hard_negatives.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "pack": args.pack, "split": args.split, "detector": args.detector, "conf": args.conf,
              "counts": counts, "boxes": boxes_out, "scores": scores_out}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result) + "\n")
    print(json.dumps(counts))
    return result


if __name__ == "__main__":
    main()
