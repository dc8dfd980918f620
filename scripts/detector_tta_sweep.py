"""Which test-time augmentation for the detector: every combination of input sides, with and without the
mirror image, measured on one split of a detection pack. Run it on the *development* split to choose
(the choice in ``iznet.detect.tta`` came from this), and on the test split only to report.

Each image's passes are computed once per side and mirror; combinations are fused from them with
``iznet.detect.tta.fuse_passes``, exactly as the detector does.

    OMP_NUM_THREADS=1 python scripts/detector_tta_sweep.py --detector src/iznet/assets/detector.pt \
        --pack packs/det_train.pt --split dev --out runs/tta_sweep_dev.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import torch

from iznet.detect.data import composite_eval_set, photo_eval_set
from iznet.detect.detector import load_detector
from iznet.detect.evaluate import evaluate_detections
from iznet.detect.letterbox import letterbox
from iznet.detect.pack import load_pack
from iznet.detect.postprocess import select
from iznet.detect.train import AP_POSTPROCESS
from iznet.detect.tta import TTAConfig, decode_pass, fuse_passes


@torch.no_grad()
def all_passes(model, images, sides: list[int]) -> list[dict]:
    """Per image: {(side, flipped): (boxes, scores)} in original pixels."""
    out = []
    for img in images:
        found = {}
        for side in sides:
            x, lb = letterbox(img, side)
            x = x.float()[None] / 255.0
            raw = model(torch.cat([x, x.flip(-1)]))
            found[(side, False)] = decode_pass(raw[:1], side, model.image_size, False, [lb])[0]
            found[(side, True)] = decode_pass(raw[1:], side, model.image_size, True, [lb])[0]
        out.append(found)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--detector", required=True, help="an iznet detector checkpoint")
    ap.add_argument("--pack", required=True, help="a detection pack holding --split")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--sides", default="416,480,544,608", help="input sides to combine (multiples of 32)")
    ap.add_argument("--max-sides", type=int, default=3, help="at most this many sides in one combination")
    ap.add_argument("--composites", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    det = load_detector(args.detector, tta="off")
    trained = det.model.image_size
    sides = sorted({int(s) for s in args.sides.split(",")})
    pack = load_pack(args.pack)
    sets = {"faces1750": photo_eval_set(pack, args.split, truth="given_tight"),
            "composites": composite_eval_set(pack, args.split, args.composites, 416, seed=1234)}
    results = {"command": "python scripts/detector_tta_sweep.py " + " ".join(sys.argv[1:] if argv is None else argv),
               "detector": args.detector, "split": args.split, "trained_side": trained, "rows": []}
    cached = {name: all_passes(det.model, [im for im, _ in items], sides) for name, items in sets.items()}
    combos = [c for k in range(1, args.max_sides + 1) for c in itertools.combinations(sides, k)]
    for combo, flip in itertools.product(combos, (False, True)):
        keys = [(s, f) for s in combo for f in ((False, True) if flip else (False,))]
        tta = TTAConfig(scales=tuple(s / trained for s in combo), flip=flip)
        row = {"sides": list(combo), "flip": flip, "passes": len(keys)}
        for name, items in sets.items():
            found = []
            for passes in cached[name]:
                if len(keys) == 1 and keys[0] == (trained, False):  # the plain single pass: no voting
                    b, s = select(*passes[keys[0]], AP_POSTPROCESS)
                else:
                    b, s = fuse_passes([passes[k] for k in keys], AP_POSTPROCESS, tta)
                found.append((b.numpy(), s.numpy()))
            m = evaluate_detections(found, [b for _, b in items], det.config.conf_threshold,
                                    det.config.max_detections)
            row[name] = {k: round(v, 4) if isinstance(v, float) else v for k, v in m.to_dict().items()}
        results["rows"].append(row)
        print(f"sides {'+'.join(map(str, combo)):<16} flip {str(flip):<5} passes {len(keys)}  "
              f"faces1750 AP {row['faces1750']['ap50']:.3f} r50 {row['faces1750']['recall50']:.3f}  "
              f"composites AP {row['composites']['ap50']:.3f} r50 {row['composites']['recall50']:.3f}", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
