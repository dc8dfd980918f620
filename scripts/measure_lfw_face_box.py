"""Measure where the face sits in LFW deep-funneled images (250x250), to define ``LFW_FACE_BOX``.

Runs OpenCV's YuNet detector (reference model in ../shared/models, read only, never shipped) and
OpenCV's Haar cascade (ships with opencv) on a seeded random sample of LFW images, keeps the
detection nearest the frame centre, and prints the median box of each (x0, y0, x1, y1 in pixels of
the 250x250 frame) with quartiles, plus the Haar box expressed relative to the YuNet box (used to
turn a Haar box into the project's tight-box convention).

    python scripts/measure_lfw_face_box.py --n 500 [--data DIR] [--montage crops.png]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import cv2
import numpy as np

from iznet.data.crops import FACE_CROP_SCALE, crop_face
from iznet.data.images import load_image
from iznet.data.lfw import find_lfw

DEFAULT_YUNET = Path(__file__).resolve().parents[2] / "shared" / "models" / "face_detection_yunet_2026may.onnx"


def central(boxes: np.ndarray, frame: int = 250) -> np.ndarray | None:
    """The xyxy box (rows of x0,y0,x1,y1) whose centre is nearest the frame centre."""
    if boxes is None or len(boxes) == 0:
        return None
    c = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    d = np.linalg.norm(c - frame / 2, axis=1)
    return boxes[int(np.argmin(d))]


def describe(name: str, boxes: np.ndarray) -> np.ndarray:
    q = np.percentile(boxes, [25, 50, 75], axis=0)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    print(f"{name}: {len(boxes)} faces")
    for i, k in enumerate(["x0", "y0", "x1", "y1"]):
        print(f"  {k}: median {q[1, i]:6.1f}  (quartiles {q[0, i]:6.1f} .. {q[2, i]:6.1f})")
    print(f"  w : median {np.median(w):6.1f}  h: median {np.median(h):6.1f}  "
          f"centre: ({np.median((boxes[:, 0] + boxes[:, 2]) / 2):.1f}, "
          f"{np.median((boxes[:, 1] + boxes[:, 3]) / 2):.1f})")
    return q[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="data root or LFW folder (default: IZNET_DATA or ../shared/data)")
    ap.add_argument("--n", type=int, default=500, help="how many images to sample")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--yunet", type=Path, default=DEFAULT_YUNET)
    ap.add_argument("--montage", type=Path, default=None, help="write a montage of 32 crops here")
    args = ap.parse_args()

    lfw_root = find_lfw(args.data)
    paths = sorted((lfw_root / "images").glob("*/*.jpg"))
    sample = random.Random(args.seed).sample(paths, min(args.n, len(paths)))

    yunet = cv2.FaceDetectorYN.create(str(args.yunet), "", (250, 250), 0.7, 0.3, 50)
    haar = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    yu, ha, pairs, marks = [], [], [], []
    for p in sample:
        rgb = load_image(p)
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        yunet.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, faces = yunet.detect(bgr)
        yb = None
        if faces is not None:
            xyxy = faces[:, :4].copy()
            xyxy[:, 2:] += xyxy[:, :2]
            i = int(np.argmin(np.linalg.norm((xyxy[:, :2] + xyxy[:, 2:]) / 2 - 125, axis=1)))
            yb = xyxy[i]
            yu.append(yb)
            marks.append(faces[i, 4:14].reshape(5, 2))
        h = haar.detectMultiScale(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), 1.1, 5, minSize=(40, 40))
        hb = None
        if len(h):
            h = np.asarray(h, dtype=np.float64)
            h[:, 2:] += h[:, :2]
            hb = central(h)
            ha.append(hb)
        if yb is not None and hb is not None:
            pairs.append((yb, hb))

    print(f"sampled {len(sample)} of {len(paths)} LFW images (seed {args.seed})")
    med_y = describe("YuNet", np.array(yu))
    names = ["right eye", "left eye", "nose", "mouth right", "mouth left"]
    m = np.median(np.array(marks), axis=0)
    print("  YuNet landmarks (median): " + ", ".join(f"{n} ({x:.0f},{y:.0f})" for n, (x, y) in zip(names, m)))
    describe("Haar", np.array(ha))
    # Haar box relative to the YuNet box of the same face: centre offset and size ratio.
    yb = np.array([p[0] for p in pairs])
    hb = np.array([p[1] for p in pairs])
    ys = np.maximum(yb[:, 2] - yb[:, 0], yb[:, 3] - yb[:, 1])
    hs = hb[:, 2] - hb[:, 0]
    dcx = ((hb[:, 0] + hb[:, 2]) - (yb[:, 0] + yb[:, 2])) / 2 / hs
    dcy = ((hb[:, 1] + hb[:, 3]) - (yb[:, 1] + yb[:, 3])) / 2 / hs
    print(f"Haar vs YuNet on {len(pairs)} faces found by both: max side ratio YuNet/Haar median "
          f"{np.median(ys / hs):.3f}; YuNet centre minus Haar centre, in Haar sides: "
          f"dx {-np.median(dcx):+.3f}, dy {-np.median(dcy):+.3f}")
    box = tuple(int(round(v)) for v in med_y)
    side = FACE_CROP_SCALE * max(box[2] - box[0], box[3] - box[1])
    print(f"LFW_FACE_BOX (rounded median YuNet box) = {box}; crop side at scale {FACE_CROP_SCALE} = {side:.1f} px")

    if args.montage is not None:
        tiles = [crop_face(load_image(p), box, 112) for p in sample[:32]]
        rows = [np.concatenate(tiles[i:i + 8], 1) for i in range(0, 32, 8)]
        cv2.imwrite(str(args.montage), np.concatenate(rows, 0)[:, :, ::-1])
        print(f"montage: {args.montage}")


if __name__ == "__main__":
    main()
