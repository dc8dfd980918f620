"""Where detectors put the box on tight face crops padded onto a black canvas (as `iznet eval group` does):
median box width and height as a share of the crop, and the centre offset, per detector.

    OMP_NUM_THREADS=1 python scripts/padded_crop_boxes.py --data ../shared/data/glint24/images --every 8 \
        --detector runs/det_cpu_ft416/best.pt --detector runs/det_cpu_ft416_r2/best.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from iznet.data.images import load_image
from iznet.detect.detector import load_detector
from iznet.detect.tta import TTA_MODES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder of person folders of face crops")
    ap.add_argument("--detector", action="append", required=True, help="detector spec (repeat)")
    ap.add_argument("--every", type=int, default=8, help="use every N-th picture (sorted paths)")
    ap.add_argument("--pad", type=float, default=2.0, help="canvas side / crop side")
    ap.add_argument("--tta", default="full", choices=list(TTA_MODES))
    args = ap.parse_args()
    torch.set_num_threads(1)
    files = sorted(p for p in args.data.glob("*/*") if p.is_file())[:: args.every]
    for spec in args.detector:
        det = load_detector(spec, tta=args.tta)
        rows = []
        for f in files:
            im = load_image(f)
            h, w = im.shape[:2]
            ch, cw = int(round(h * args.pad)), int(round(w * args.pad))
            oy, ox = (ch - h) // 2, (cw - w) // 2
            canvas = np.zeros((ch, cw, 3), np.uint8)
            canvas[oy:oy + h, ox:ox + w] = im
            found = det.detect(canvas)
            if len(found) == 0:
                continue
            x1, y1, x2, y2 = found.xyxy[0].tolist()
            rows.append(((x2 - x1) / w, (y2 - y1) / h, ((x1 + x2) / 2 - ox - w / 2) / w,
                         ((y1 + y2) / 2 - oy - h / 2) / h))
        r = np.array(rows).reshape(-1, 4)
        med = np.median(r, axis=0) if len(r) else [np.nan] * 4
        print(f"{spec} tta={args.tta}: {len(files)} pictures, {len(r)} with a face; median width {med[0]:.3f}, "
              f"height {med[1]:.3f}, centre offset x {med[2]:+.3f}, y {med[3]:+.3f} (shares of the crop)")


if __name__ == "__main__":
    main()
