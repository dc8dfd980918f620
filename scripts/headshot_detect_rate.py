"""How many tight face crops (headshots: the face fills the picture) the bundled detector finds a face in,
as the pipeline detects them (with the padded-canvas retry, iznet.recognize.pipeline.NO_FACE_RETRY_PAD),
without the retry, and with the headshot fallback that enrolment adds (iznet.recognize.faces.detect_one_face).

Crops: glint24's 112x112 aligned faces as they are, and LFW photos cut to the face box (LFW_FACE_BOX, the
tight box of the deep-funneled frame, enlarged by --lfw-scale). A random sample of --n of each (seed 0).

    python scripts/headshot_detect_rate.py --data ../shared/data --n 400 --json runs/headshots.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from iznet.data.crops import LFW_FACE_BOX, crop_box
from iznet.data.images import load_image
from iznet.loading import load_detector
from iznet.recognize import pipeline as pl
from iznet.recognize.faces import detect_one_face


def lfw_tight(img: np.ndarray, scale: float) -> np.ndarray:
    x0, y0, x1, y1 = crop_box(LFW_FACE_BOX, scale)
    return np.ascontiguousarray(img[max(0, y0):y1, max(0, x0):x1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--lfw-scale", type=float, default=1.0, help="1.0: cut to the tight face box")
    ap.add_argument("--detector", default=None, help="detector spec (default: the bundled one)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(1)
    det = load_detector(spec=a.detector)
    rng = np.random.default_rng(0)
    sets = {"glint24": sorted((a.data / "glint24" / "images").glob("*/*")),
            "lfw_tight": sorted((a.data / "lfw" / "images").glob("*/*.jpg"))}
    out = {"command": "python scripts/headshot_detect_rate.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items() if v is not None), "sets": {}}
    for name, files in sets.items():
        pick = [files[i] for i in rng.choice(len(files), size=min(a.n, len(files)), replace=False)]
        plain = retry = fallback = 0
        missed = []
        for f in pick:
            img = load_image(f)
            if name == "lfw_tight":
                img = lfw_tight(img, a.lfw_scale)
            b, _ = pl.detect_faces(det, img)
            if len(b):
                plain += 1
                retry += 1
                fallback += 1
            elif len(pl.detect_faces(det, img, retry_pad=pl.NO_FACE_RETRY_PAD)[0]):
                retry += 1
                fallback += 1
            elif len(detect_one_face(det, img)[0]):
                fallback += 1
            else:
                missed.append(str(f))
        out["sets"][name] = {"n": len(pick), "found_without_retry": plain / len(pick),
                             "found_with_retry": retry / len(pick), "found_with_headshot_fallback": fallback / len(pick),
                             "missed": missed, "size_example": list(img.shape[:2])}
        print(f"{name}: {len(pick)} crops, face found in {100 * plain / len(pick):.1f}% without the retry, "
              f"{100 * retry / len(pick):.1f}% with it, {100 * fallback / len(pick):.1f}% with the headshot fallback "
              f"(enrolment, extract-faces)")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
