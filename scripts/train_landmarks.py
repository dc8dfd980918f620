"""Train the landmark branch of a detector (its box outputs frozen) and measure it against the teacher.

Usage:
    OMP_NUM_THREADS=1 python scripts/train_landmarks.py --detector src/iznet/assets/detector.pt \
        --labels packs/landmarks_v1.npz --out runs/det_landmarks_v1 --steps 1500
    python scripts/train_landmarks.py --eval-only --detector runs/det_landmarks_v1/model.pt \
        --labels packs/landmarks_v1.npz --out runs/det_landmarks_v1

Training resumes from ``OUT/last.pt``. The evaluation (``OUT/eval_<split>.json``) runs the detector as
users get it (default test-time augmentation) on the labels' ``test`` images and matches its faces to the
teacher's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from iznet.detect.detector import YoloFaceDetector  # noqa: E402
from iznet.detect.landmark_train import (LandmarkLabels, LandmarkTrainConfig, evaluate_landmarks,  # noqa: E402
                                         train_landmark_head)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=LandmarkTrainConfig.steps)
    ap.add_argument("--batch", type=int, default=LandmarkTrainConfig.batch)
    ap.add_argument("--lr", type=float, default=LandmarkTrainConfig.lr)
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=0, help="evaluate on the first N images of the split only")
    ap.add_argument("--match", default="", help="evaluate only images whose path contains this text "
                                                "(e.g. faces-1750, or collection/raw)")
    ap.add_argument("--tta", default=None, help="detector test-time augmentation (default: full, as users run it)")
    ap.add_argument("--relook", choices=("on", "off"), default="off",
                    help="the second look at small faces for their points (iznet.detect.relook; on: the setting "
                    "users run; off: the first look's points, as the landmark branch gives them)")
    ap.add_argument("--relook-conf", type=float, default=None,
                    help="with --relook on: the second look's confidence threshold (default: the shipped setting)")
    ap.add_argument("--json-name", default=None, help="result file name in OUT (default eval_<split>.json)")
    args = ap.parse_args(argv)

    labels = LandmarkLabels.load(args.labels)
    out = Path(args.out)
    model = Path(args.detector)
    if not args.eval_only:
        cfg = LandmarkTrainConfig(steps=args.steps, batch=args.batch, lr=args.lr)  # per_face sampling (default)

        def progress(step: int, loss: float) -> None:
            if step % 50 == 0 or step == cfg.steps:
                print(f"step {step}/{cfg.steps} loss {loss:.4f}", flush=True)

        model = train_landmark_head(args.detector, labels, out, cfg, progress)
        print("wrote", model)
    part = labels.select(args.split)
    if args.match:
        keep = [i for i, p in enumerate(part.paths) if args.match in p]
        part = LandmarkLabels([part.paths[i] for i in keep], [part.boxes[i] for i in keep],
                              [part.points[i] for i in keep], [part.split[i] for i in keep], part.meta)
    if args.limit:
        part = LandmarkLabels(part.paths[:args.limit], part.boxes[:args.limit], part.points[:args.limit],
                              part.split[:args.limit], part.meta)
    from iznet.detect.settings import DEFAULT_RELOOK

    relook = DEFAULT_RELOOK if args.relook == "on" else None
    if relook is not None and args.relook_conf is not None:
        import dataclasses

        relook = dataclasses.replace(relook, conf=args.relook_conf)
    res = evaluate_landmarks(YoloFaceDetector.from_checkpoint(model, tta=args.tta, relook=relook), part)
    res["detector"] = str(model)
    res["split"] = args.split
    res["relook"] = None if relook is None else dict(relook.__dict__)
    res["images"] = len(part)
    out.mkdir(parents=True, exist_ok=True)
    (out / (args.json_name or f"eval_{args.split}.json")).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "worst"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
