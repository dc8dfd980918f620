"""Face detection benchmark: our detector(s) next to OpenCV Haar and YuNet, measured in the same run.

Sets (from a test pack, ``iznet detector-pack --splits test``; nothing in it was seen in training):

- ``faces1750``: the held-out faces-1750 photos (20% of the images, seed 0). Truth: the given loose head
  boxes mapped to the tight convention by the rule fitted on the training split (teacher-independent).
  Some faces in these photos are unlabelled, so every detector pays false positives for them.
- ``faces1750-reconciled``: the same photos with the reconciled labels (YuNet boxes where they match a
  given box, plus unlabelled faces YuNet found at score >= 0.8). This truth is partly YuNet's own output:
  it favours YuNet and is shown for reference only.
- ``composites``: held-out composites (LFW test people on backgrounds cut from the test photos, seeded),
  exact tight boxes.

With ``--teacher PATH`` (YuNet's ONNX file), the faces a teacher finds at score >= 0.5 and no given box covers
(faces the labels lack) give two more numbers per detector on ``faces1750``: the AP with detections on them
left out of the ranking (``ap50_ignoring_unlabelled``), and its false faces at its operating point by kind
(``false_faces``: a loose box on a labelled face, an unlabelled face, no face at all; per photo).

Metrics (``iznet.detect.evaluate``): AP at IoU 0.5 over each detector's ranked detections (run at a low
threshold), recall at IoU 0.3 / 0.5 and precision at the detector's own operating threshold (ours 0.3 with
at most 12 faces; YuNet 0.9, the OpenCV Zoo default; Haar: every detection). Speed: images per second on
the faces-1750 test photos, one image at a time, on the device given (``--device``), threads as set.
Our detectors are measured once per ``--tta`` mode (default ``full``, as the CLI runs them; see
``iznet.detect.tta``). ``--split dev --pack packs/det_train.pt`` measures on the development photos instead,
where the test-time augmentation was chosen.

    python benchmarks/bench_detect.py --pack packs/det_test.pt --detector runs/det/best.pt \\
        --detector haar --detector yunet:/work/shared/models/face_detection_yunet_2026may.onnx --out runs/bench_detect.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from iznet.detect.data import composite_eval_set, photo_eval_set
from iznet.detect.detector import YoloFaceDetector, load_detector
from iznet.detect.evaluate import ap_ignoring, evaluate_detections, false_faces, operating_point, unlabelled_faces
from iznet.detect.pack import load_pack
from iznet.detect.teachers import HaarDetector, YuNetDetector
from iznet.detect.train import AP_POSTPROCESS
from iznet.detect.tta import TTA_MODES


def make_detector(spec: str, device: str, tta: str = "full"):
    """(detector run at a low threshold for AP, operating threshold, max faces at the operating point)."""
    if spec == "haar":
        return HaarDetector(), 0.0, None
    if spec.startswith("yunet:"):
        return YuNetDetector(spec[len("yunet:"):], score_threshold=0.05), 0.9, None
    det = load_detector(spec, device=device, tta=tta)
    assert isinstance(det, YoloFaceDetector)
    operating = det.config
    det.config = AP_POSTPROCESS
    return det, operating.conf_threshold, operating.max_detections


def run(detector, items, batch: int = 16) -> tuple[list, float]:
    """Detections (boxes, scores) per image and images/s (one image at a time)."""
    out = []
    t0 = time.perf_counter()
    for img, _ in items:
        out.append(detector.detect(img).numpy())
    return out, len(items) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pack", required=True, help="test pack (iznet detector-pack --splits test)")
    ap.add_argument("--detector", action="append", required=True, help="haar | yunet:PATH | checkpoint (repeat)")
    ap.add_argument("--composites", type=int, default=300, help="held-out composites (seed 1234)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tta", action="append", choices=sorted(TTA_MODES), default=None,
                    help="test-time augmentation of our detectors (repeat to compare; default: full)")
    ap.add_argument("--threads", type=int, default=None, help="torch/OpenCV threads (default: as is)")
    ap.add_argument("--out", type=Path, default=None, help="JSON results file")
    ap.add_argument("--teacher", default=None, help="YuNet ONNX file: find the faces the labels lack (see above)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        import cv2

        cv2.setNumThreads(args.threads)
    pack = load_pack(args.pack)
    sets = {
        "faces1750": photo_eval_set(pack, args.split, truth="given_tight"),
        "composites": composite_eval_set(pack, args.split, args.composites, 416, seed=1234),
    }
    reconciled_truth = [b for _, b in photo_eval_set(pack, args.split, truth="boxes")]
    unlabelled = None
    if args.teacher:
        teacher = YuNetDetector(args.teacher, score_threshold=0.5)
        unlabelled = [unlabelled_faces(teacher.detect(img).numpy()[0], gt) for img, gt in sets["faces1750"]]
    results = {"command": "python benchmarks/bench_detect.py " + " ".join(sys.argv[1:] if argv is None else argv),
               "pack": str(args.pack), "device": args.device, "threads": torch.get_num_threads(),
               "sets": {k: len(v) for k, v in sets.items()}, "detectors": {}}
    runs = []
    for spec in args.detector:
        ours = Path(spec).exists()
        for mode in (args.tta or ["full"]) if ours else [None]:
            name = f"iznet:{Path(spec).parent.name}/{Path(spec).name} tta={mode}" if ours else spec
            runs.append((spec, mode, name))
    for spec, mode, name in runs:
        det, thr, max_det = make_detector(spec, args.device, mode or "off")
        row: dict = {"operating_threshold": thr}
        for set_name, items in sets.items():
            found, speed = run(det, items)
            truth = [b for _, b in items]
            row[set_name] = evaluate_detections(found, truth, thr, max_det).to_dict()
            row[set_name]["images_per_s"] = round(speed, 1)
            if set_name == "faces1750":
                row["faces1750-reconciled"] = evaluate_detections(found, reconciled_truth, thr, max_det).to_dict()
                if unlabelled is not None:
                    row[set_name]["ap50_ignoring_unlabelled"] = ap_ignoring(found, truth, unlabelled)
                    counts = false_faces(operating_point(found, thr, max_det), truth, unlabelled)
                    row[set_name]["false_faces_per_photo"] = {k: round(v / len(items), 3) for k, v in counts.items()}
        results["detectors"][name] = row
        print(json.dumps({name: row}), file=sys.stderr, flush=True)
    if unlabelled is not None:
        results["unlabelled_faces"] = int(sum(len(u) for u in unlabelled))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    return results


def table(results: dict) -> str:
    """A markdown table of the results."""
    lines = ["| detector | set | AP@0.5 | recall@0.3 | recall@0.5 | precision@0.5 | images/s |",
             "|---|---|---|---|---|---|---|"]
    for name, row in results["detectors"].items():
        for set_name in ("faces1750", "faces1750-reconciled", "composites"):
            m = row.get(set_name)
            if not m:
                continue
            speed = m.get("images_per_s", row["faces1750"]["images_per_s"])
            lines.append(f"| {name} | {set_name} | {m['ap50']:.3f} | {m['recall30']:.3f} | {m['recall50']:.3f} | "
                         f"{m['precision50']:.3f} | {speed:.1f} |")
    rows = [(n, r["faces1750"]) for n, r in results["detectors"].items() if "false_faces_per_photo" in r["faces1750"]]
    if rows:
        lines += ["", "| detector | AP@0.5, unlabelled faces left out | false faces a photo: loose / unlabelled face / "
                  "no face |", "|---|---|---|"]
        for name, m in rows:
            f = m["false_faces_per_photo"]
            lines.append(f"| {name} | {m['ap50_ignoring_unlabelled']:.3f} | {f['loose']:.3f} / "
                         f"{f['unlabelled face']:.3f} / {f['no face']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
