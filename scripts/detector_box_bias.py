"""How a detector's boxes sit on the truth of held-out photos: recall at IoU 0.5 / 0.3, and among the faces
matched at IoU >= 0.3 the median IoU, log width / height ratios and centre offsets (systematic bias shows
as ratios or offsets away from 0; a loose fit as a low median IoU), plus recall@0.5 of the smaller and
larger half of the faces.

    OMP_NUM_THREADS=1 python scripts/detector_box_bias.py --pack packs/det_test.pt --split test \
        --detector src/iznet/assets/detector.pt --tta off --tta full \
        --yunet /work/shared/models/face_detection_yunet_2026may.onnx
"""

import argparse

import numpy as np
import torch
from torchvision.ops import box_iou

from iznet.detect.data import photo_eval_set
from iznet.detect.detector import load_detector
from iznet.detect.tta import TTA_MODES
from iznet.detect.pack import load_pack
from iznet.detect.teachers import YuNetDetector


def box_fit(det, items, threshold: float) -> np.ndarray:
    """Per true face: (best IoU, log width ratio, log height ratio, dx / w, dy / h, true width)."""
    rows = []
    for img, gt in items:
        boxes, scores = det.detect(img).numpy()[:2]
        boxes = np.asarray(boxes[scores >= threshold], np.float64).reshape(-1, 4)
        gt = np.asarray(gt, np.float64).reshape(-1, 4)
        gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
        if len(boxes) == 0:
            rows += [(0.0, np.nan, np.nan, np.nan, np.nan, w) for w in gw]
            continue
        iou = box_iou(torch.from_numpy(gt), torch.from_numpy(boxes)).numpy()
        b = boxes[iou.argmax(1)]
        rows += zip(iou.max(1), np.log((b[:, 2] - b[:, 0]) / gw), np.log((b[:, 3] - b[:, 1]) / gh),
                    ((b[:, 0] + b[:, 2]) - (gt[:, 0] + gt[:, 2])) / 2 / gw,
                    ((b[:, 1] + b[:, 3]) - (gt[:, 1] + gt[:, 3])) / 2 / gh, gw)
    return np.array(rows, np.float64).reshape(-1, 6)


def stats(name: str, det, items, threshold: float) -> None:
    r = box_fit(det, items, threshold)
    ok = r[:, 0] >= 0.3
    med = np.median(r[ok], axis=0)
    print(f"{name}: faces {len(r)}, iou>=0.5 {np.mean(r[:, 0] >= 0.5):.3f}, >=0.3 {ok.mean():.3f}; among >=0.3: "
          f"median iou {med[0]:.3f}, log w ratio {med[1]:+.3f}, log h ratio {med[2]:+.3f}, "
          f"dx/w {med[3]:+.3f}, dy/h {med[4]:+.3f}")
    small = r[:, 5] < np.median(r[:, 5])
    print(f"   small half recall@0.5 {np.mean(r[small, 0] >= 0.5):.3f}, large half {np.mean(r[~small, 0] >= 0.5):.3f}; "
          f"median gt width {np.median(r[:, 5]):.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pack", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--detector", default="src/iznet/assets/detector.pt")
    ap.add_argument("--yunet", default=None, help="YuNet .onnx file, for reference (threshold 0.9)")
    ap.add_argument("--tta", action="append", choices=list(TTA_MODES), default=None,
                    help="test-time augmentation of our detector (repeat to compare; default: full)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    pack = load_pack(args.pack)
    ours = {mode: load_detector(args.detector, device="cpu", tta=mode) for mode in args.tta or ["full"]}
    yunet = YuNetDetector(args.yunet, score_threshold=0.05) if args.yunet else None
    for truth in ["given_tight", "boxes"]:
        items = photo_eval_set(pack, args.split, truth=truth)
        print(f"== {args.split} truth={truth} ({len(items)} photos)")
        for mode, det in ours.items():
            stats(f"{args.detector} tta={mode}", det, items, 0.3)
        if yunet is not None:
            stats("yunet", yunet, items, 0.9)


if __name__ == "__main__":
    main()
