"""How a detector's boxes sit on the truth of held-out photos: recall at IoU 0.5 / 0.3, and among the faces
matched at IoU >= 0.3 the median IoU, log width / height ratios and centre offsets (systematic bias shows
as ratios or offsets away from 0; a loose fit as a low median IoU), plus recall@0.5 of the smaller and
larger half of the faces.

    OMP_NUM_THREADS=1 python scripts/detector_box_bias.py --pack packs/det_test.pt --split test \
        --detector src/iznet/assets/detector.pt --yunet /work/shared/models/face_detection_yunet_2026may.onnx
"""

import argparse

import numpy as np
import torch

from iznet.detect.data import photo_eval_set
from iznet.detect.detector import load_detector
from iznet.detect.pack import load_pack
from iznet.detect.teachers import YuNetDetector


def iou(a, b):
    x1 = np.maximum(a[:, None, 0], b[None, :, 0]); y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2]); y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    aa = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]); bb = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (aa[:, None] + bb[None, :] - inter)

def stats(name, det, items, thr):
    rows = []
    for img, gt in items:
        d = det.detect(img).numpy(); boxes, scores = d[0], d[1]
        boxes = boxes[scores >= thr]
        gt = np.asarray(gt, float).reshape(-1, 4)
        if len(gt) == 0 or len(boxes) == 0:
            rows += [(0, np.nan, np.nan, np.nan, np.nan, (g[2]-g[0])) for g in gt]; continue
        m = iou(gt, boxes)
        for i, g in enumerate(gt):
            j = m[i].argmax(); b = boxes[j]; gw, gh = g[2]-g[0], g[3]-g[1]
            rows.append((m[i, j], np.log((b[2]-b[0])/gw), np.log((b[3]-b[1])/gh),
                         ((b[0]+b[2])/2-(g[0]+g[2])/2)/gw, ((b[1]+b[3])/2-(g[1]+g[3])/2)/gh, gw))
    r = np.array(rows, float); ok = r[:, 0] >= 0.3
    print(f"{name}: faces {len(r)}, iou>=0.5 {np.mean(r[:,0]>=0.5):.3f}, >=0.3 {ok.mean():.3f}; among >=0.3: median iou {np.median(r[ok,0]):.3f}, "
          f"log w ratio {np.median(r[ok,1]):+.3f}, log h ratio {np.median(r[ok,2]):+.3f}, dx/w {np.median(r[ok,3]):+.3f}, dy/h {np.median(r[ok,4]):+.3f}")
    small = r[:, 5] < np.median(r[:, 5])
    print(f"   small half recall@0.5 {np.mean(r[small,0]>=0.5):.3f}, large half {np.mean(r[~small,0]>=0.5):.3f}; median gt width {np.median(r[:,5]):.0f}")



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pack", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--detector", default="src/iznet/assets/detector.pt")
    ap.add_argument("--yunet", default=None, help="YuNet .onnx file, for reference (threshold 0.9)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    pack = load_pack(args.pack)
    for truth in ["given_tight", "boxes"]:
        items = photo_eval_set(pack, args.split, truth=truth)
        print(f"== {args.split} truth={truth} ({len(items)} photos)")
        stats(args.detector, load_detector(args.detector, device="cpu"), items, 0.3)
        if args.yunet:
            stats("yunet", YuNetDetector(args.yunet, score_threshold=0.05), items, 0.9)


if __name__ == "__main__":
    main()
