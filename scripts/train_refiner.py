"""Train the landmark refiner (:mod:`iznet.detect.refine`) on teacher labels, attach it to a detector with a
landmark branch, and write the combined detector checkpoint.

Usage:
    OMP_NUM_THREADS=1 python scripts/train_refiner.py --labels packs/landmarks_v1.npz \
        --detector runs/det_landmarks_v1/model.pt --out runs/det_landmarks_v1 --steps 3000
Then measure with ``scripts/train_landmarks.py --eval-only --detector runs/det_landmarks_v1/refined.pt``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from iznet.detect.detector import KIND, save_detector  # noqa: E402
from iznet.detect.landmark_train import LandmarkLabels, detector_from_checkpoint_partial  # noqa: E402
from iznet.detect.refine import RefinerTrainConfig, train_refiner  # noqa: E402
from iznet.utils.checkpoint import load_checkpoint  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--detector", required=True, help="a detector checkpoint with a landmark branch")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=RefinerTrainConfig.steps)
    args = ap.parse_args(argv)
    cfg = RefinerTrainConfig(steps=args.steps)

    def progress(step: int, loss: float) -> None:
        if step % 100 == 0 or step == cfg.steps:
            print(f"step {step}/{cfg.steps} loss {loss:.5f}", flush=True)

    net = train_refiner(LandmarkLabels.load(args.labels), args.out, cfg, progress)
    ck = load_checkpoint(args.detector, kind=KIND)
    kwargs = dict(ck.get("model_kwargs") or {}, refiner=True)
    model = detector_from_checkpoint_partial(dict(ck, model_kwargs=kwargs))
    model.landmark_refiner.load_state_dict(net.state_dict())
    meta = dict(ck.get("meta") or {})
    meta["refiner"] = {"labels": args.labels, "config": cfg.__dict__}
    path = save_detector(Path(args.out) / "refined.pt", model, ck["model"], kwargs, meta=meta)
    print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
