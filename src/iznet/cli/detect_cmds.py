"""Face detection verbs: ``detect``, ``label-boxes``, ``detector-pack``, ``train-detector``.

Only parsing and formatting here; the work is in :mod:`iznet.detect`. See ``docs/detection.md``.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer

from iznet.cli.app import app
from iznet.cli.inputs import expand_inputs, option_value

DETECTOR_SPEC_HELP = ("face detector: 'haar' (OpenCV's cascade), 'yunet:PATH' (YuNet ONNX file) or a detector "
                      "checkpoint (default: the bundled one, iznet/assets/detector.pt)")


DETECTOR_TTA_HELP = ("test-time augmentation of iznet detectors: full (input sides 1x and 1.3x, each also "
                     "mirrored: 4 passes, the most accurate), flip (2 passes) or off (1 pass, the fastest)")


RELOOK_HELP = ("look again at faces small in the detector's view (under 64 of its 416 input pixels), on a square "
               "3x their box, for their landmarks (iznet detectors; the aligned crop follows them); --no-relook: "
               "one look, faster on photos of many small faces")


RUNTIME_HELP = ("torch, or onnx: run the networks with onnxruntime (checkpoints are exported once into the ONNX "
                "cache; -e/-d also take .onnx files)")
LABEL_RUNTIME_HELP = ("auto (default): onnxruntime when installed, else torch; torch; or onnx. With onnxruntime the "
                      "checkpoints are exported once into the ONNX cache, and later runs start without importing "
                      "torch (-e/-d also take .onnx files)")
ONNX_DIR_HELP = "ONNX cache for --runtime onnx (default: $IZNET_ONNX_DIR, else ~/.cache/iznet/onnx)"
CONF_HELP = "detector confidence threshold (iznet detectors; default 0.3)"


def _command_line() -> str:
    return "iznet " + " ".join(shlex.quote(a) for a in sys.argv[1:])


@app.command("detect")
def detect_cmd(
    images: List[str] = typer.Argument(..., help="photos or folders of photos"),
    detector: Optional[str] = typer.Option(None, "--detector", "-d", help=DETECTOR_SPEC_HELP),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="folder for NAME_boxes.jpg (red boxes, scores)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON line per photo instead of text"),
    landmarks: bool = typer.Option(False, "--landmarks", help="also draw the five landmarks of each face as dots "
                                                              "(detectors that give them)"),
    conf: Optional[float] = typer.Option(None, "--conf", min=0.0, max=1.0, help=CONF_HELP),
    device: Optional[str] = typer.Option(None, help="cpu | cuda (iznet detectors; default cpu)"),
    tta: str = typer.Option("full", "--tta", help=DETECTOR_TTA_HELP),
    relook: bool = typer.Option(True, "--relook/--no-relook", help=RELOOK_HELP),
    runtime: str = typer.Option("torch", "--runtime", help=RUNTIME_HELP),
    onnx_dir: Optional[Path] = typer.Option(None, "--onnx-dir", help=ONNX_DIR_HELP),
) -> None:
    """Find faces in photos: print boxes (x1 y1 x2 y2 in pixels) and scores, optionally draw them.

    Exit status 1 when some photo could not be read (the others are still processed).
    """
    from iznet.data.images import load_image
    from iznet.errors import ImageError
    from iznet.loading import DetectorOptions, load_detector
    from iznet.viz.draw import draw_detections

    det = load_detector(option_value(DetectorOptions, detector, runtime=runtime, tta=tta, conf=conf, device=device,
                                     onnx_dir=onnx_dir, relook=relook))
    files, problems = expand_inputs(images)
    if out is not None and out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} is a file; give a folder", param_hint="--out")
    failed = list(problems)
    for arg, why in problems:
        typer.echo(f"error: {arg}: {why}", err=True)
    used: set[str] = set()
    for f in files:
        try:
            img = load_image(f)
        except ImageError as e:
            failed.append((str(f), e.reason))
            typer.echo(f"error: cannot read {f}: {e.reason}", err=True)
            continue
        dets = det.detect(img)
        if out is not None:
            from PIL import Image

            from iznet.utils.io import atomic_path

            stem, n = f.stem, 2
            while stem.casefold() in used:
                stem, n = f"{f.stem}_{n}", n + 1
            used.add(stem.casefold())
            points = dets.landmarks.numpy() if landmarks and dets.landmarks is not None else None
            drawn = draw_detections(img, dets.xyxy.numpy(), [f"{s:.2f}" for s in dets.scores.tolist()],
                                    landmarks=points)
            with atomic_path(out / f"{stem}_boxes.jpg") as tmp:
                Image.fromarray(drawn).save(tmp, format="JPEG", quality=92)
        if as_json:
            typer.echo(json.dumps({"image": str(f), "width": img.shape[1], "height": img.shape[0],
                                   "detector": det.name, "faces": dets.to_json()}))
            if len(dets) == 0:
                typer.echo(f"no face found in {f}", err=True)
        elif len(dets) == 0:
            typer.echo(f"{f}: no face found")
        else:
            typer.echo(f"{f}: {len(dets)} face(s)")
            for box in dets.to_json():
                x1, y1, x2, y2 = box["xyxy"]
                typer.echo(f"  {x1:.0f} {y1:.0f} {x2:.0f} {y2:.0f}  score {box['score']:.2f}")
    if failed:
        raise typer.Exit(1)


@app.command("label-boxes")
def label_boxes_cmd(
    photos: List[str] = typer.Argument(..., help="photos or folders of photos"),
    teacher: str = typer.Option(..., "--teacher", help="'haar' or 'yunet:PATH' (the YuNet ONNX file, read in place)"),
    out: Path = typer.Option(..., "--out", "-o", help="CSV to write: image,x,y,w,h,score"),
    min_score: float = typer.Option(0.3, help="YuNet: lowest score kept"),
) -> None:
    """Pseudo-label face boxes with a teacher detector (tight boxes; see docs/detection.md).

    Images are named relative to the folder when one folder is given, else by their path as given.
    """
    from tqdm import tqdm

    from iznet.detect.boxes import label_images, write_boxes_csv
    from iznet.detect.teachers import HaarDetector, YuNetDetector
    from iznet.errors import ModelError

    if teacher == "haar":
        det = HaarDetector()
    elif teacher.startswith("yunet:"):
        det = YuNetDetector(teacher[len("yunet:"):], score_threshold=min_score)
    else:
        raise ModelError(f"unknown teacher {teacher!r}: use 'haar' or 'yunet:PATH'")
    files, problems = expand_inputs(photos)
    for arg, why in problems:
        typer.echo(f"error: {arg}: {why}", err=True)
    root = Path(photos[0]) if len(photos) == 1 and Path(photos[0]).is_dir() else None
    names = [str(f.relative_to(root)) if root else str(f) for f in files]
    with tqdm(total=len(files), unit="photo", desc="labelling", file=sys.stderr, dynamic_ncols=True) as bar:
        labels, skipped = label_images(det, files, names, progress=bar.update)
    write_boxes_csv(out, labels)
    n_faces = sum(len(v.boxes) for v in labels.values())
    empty = sum(len(v.boxes) == 0 for v in labels.values())
    for path, why in skipped:
        typer.echo(f"error: cannot read {path}: {why}", err=True)
    typer.echo(f"{len(labels)} photo(s), {n_faces} face(s), {empty} with no face -> {out}")
    if skipped or problems:
        raise typer.Exit(1)


@app.command("detector-pack")
def detector_pack_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="pack file to write (e.g. packs/det_train.pt)"),
    faces: Path = typer.Option(..., "--faces", help="faces-1750 folder (images/ and boxes.csv)"),
    teacher_boxes: Path = typer.Option(..., "--teacher-boxes", help="CSV from `iznet label-boxes` on those images"),
    lfw: Optional[Path] = typer.Option(None, "--lfw", help="LFW folder (images/<person>/) for composites"),
    splits: str = typer.Option("train,dev", help="splits to include: train, dev, test"),
    photo_quality: int = typer.Option(60, min=30, max=95, help="JPEG quality of the photos"),
    seed: int = typer.Option(0, help="split seed"),
) -> None:
    """Pack detection data (JPEG bytes + tight boxes) into one file to carry to a GPU machine."""
    from tqdm import tqdm

    from iznet.detect.pack import SPLITS, build_pack

    keep = [s.strip() for s in splits.split(",") if s.strip()]
    bad = [s for s in keep if s not in SPLITS]
    if bad or not keep:
        raise typer.BadParameter(f"{splits!r}: choose from {', '.join(SPLITS)}", param_hint="--splits")
    with tqdm(unit="image", desc="packing", file=sys.stderr, dynamic_ncols=True) as bar:
        path, meta = build_pack(out, faces, teacher_boxes, lfw, keep_splits=keep, seed=seed,
                                photo_quality=photo_quality, progress=bar.update)
    counts = ", ".join(f"{s}: {c['photos']} photos + {c['faces']} faces" for s, c in meta["counts"].items()
                       if c["photos"] or c["faces"])
    r = meta["reconcile"]
    typer.echo(f"{path}: {meta['bytes'] / 1e6:.1f} MB; {counts}")
    typer.echo(f"given boxes {r['given']}: {r['matched']} matched to the teacher, {r['mapped']} mapped by rule; "
               f"{r['added']} unlabelled faces added; mapping {json.dumps(r['mapping'])}; median IoU of mapped given "
               f"boxes with the matched teacher boxes {r['median_iou_mapped_vs_teacher']:.3f}")


@app.command("train-detector")
def train_detector_cmd(
    data: Optional[Path] = typer.Option(None, "--data", help="detection pack from `iznet detector-pack`"),
    out: Path = typer.Option(..., "--out", "-o", help="run folder (config, metrics, last.pt, best.pt)"),
    toy: bool = typer.Option(False, "--toy", help="train the write-up's toy rectangles model instead (no data)"),
    backbone: str = typer.Option("light", help="light | darknet53"),
    width: Optional[int] = typer.Option(None, help="light backbone width (default 16); --toy: filters per "
                                                   "convolution (default 64; Table 1: 128)"),
    image_size: int = typer.Option(416, help="input side (multiple of 32; grid = size / 32)"),
    epochs: int = typer.Option(30, min=1),
    batch_size: Optional[int] = typer.Option(None, min=1, help="images per step (default 32; --toy: 128)"),
    lr: float = typer.Option(2e-3),
    lambda_coord: float = typer.Option(25.0),
    lambda_noobj: float = typer.Option(0.5),
    conf_target: Optional[str] = typer.Option(None, help="object confidence target: iou | one (default iou; "
                                                           "--toy: one)"),
    composite_ratio: float = typer.Option(1.0, help="composites per photo in an epoch"),
    hard_negatives: Optional[Path] = typer.Option(None, "--hard-negatives", help="false faces to learn from: "
                                                  "the JSON of scripts/mine_hard_negatives.py (same pack)"),
    hard_ratio: float = typer.Option(0.5, min=0.0, max=10.0, help="with --hard-negatives: crops around them "
                                                                   "per photo in an epoch"),
    workers: Optional[int] = typer.Option(None, help="data loader workers (default: CPUs - 1, at most 12; CPU: 1)"),
    max_minutes: Optional[float] = typer.Option(None, help="stop after this much training time (the LR schedule "
                                                          "fits in it)"),
    steps: int = typer.Option(12000, min=1, help="--toy: training steps"),
    render: str = typer.Option("add", help="--toy: 'add' (overlaps add up; well-posed) or 'occlude'"),
    assign: str = typer.Option("match", help="--toy: which predictor answers for a rectangle: 'anchor' (closest "
                                              "aspect ratio), 'match' (best current box in crowded cells), "
                                              "'match-all' (in every cell)"),
    crowd: float = typer.Option(0.0, min=0.0, max=1.0, help="--toy: share of each batch with two centres in one cell"),
    seed: int = typer.Option(0),
    device: Optional[str] = typer.Option(None, help="cpu | cuda (default: cuda when present)"),
    no_bf16: bool = typer.Option(False, "--no-bf16", help="disable bf16 autocast on CUDA"),
    resume: bool = typer.Option(False, "--resume", help="continue from OUT/last.pt"),
    init: Optional[Path] = typer.Option(None, "--init", help="start from a trained detector's weights "
                                        "(e.g. src/iznet/assets/detector.pt) with a fresh optimizer and "
                                        "schedule: fine-tuning on your own photos"),
) -> None:
    """Train the YOLO-style face detector (or, with --toy, the rectangles model of the write-up)."""
    from tqdm import tqdm

    from iznet.utils.device import default_device
    from iznet.utils.io import write_json

    dev = default_device(device)
    # options whose default differs between the toy model and the face model: left to each config class
    given = {k: v for k, v in {"width": width, "batch_size": batch_size, "conf_target": conf_target}.items()
             if v is not None}
    if toy:
        import torch

        from iznet.detect.loss import CONF_TARGETS
        from iznet.detect.toy import TOY_ASSIGN, ToyConfig, evaluate_toy, train_toy

        if render not in ("add", "occlude"):
            raise typer.BadParameter(f"{render!r}: use 'add' or 'occlude'", param_hint="--render")
        if conf_target not in (None, *CONF_TARGETS):
            raise typer.BadParameter(f"{conf_target!r}: use one of {', '.join(CONF_TARGETS)}",
                                     param_hint="--conf-target")
        if assign not in TOY_ASSIGN:
            raise typer.BadParameter(f"{assign!r}: use one of {', '.join(TOY_ASSIGN)}", param_hint="--assign")
        cfg = ToyConfig(steps=steps, lr=lr, lambda_coord=lambda_coord, lambda_noobj=lambda_noobj, seed=seed,
                        render=render, assign=assign, crowd=crowd, **given)
        with tqdm(total=cfg.steps, desc="toy", unit="step", file=sys.stderr, dynamic_ncols=True) as bar:
            def cb(step: int, losses: dict) -> None:
                bar.update(1)
                if step % 50 == 0:
                    bar.set_postfix(loss=f"{losses['loss']:.3f}", refresh=False)
            model, summary = train_toy(cfg, dev, cb)
        solved = evaluate_toy(model, 100, render=render)
        summary.update({"solved_100": solved, "solved_1000": evaluate_toy(model, 1000, seed=777, render=render),
                        "command": _command_line(), "device": str(dev)})
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "toy.json", summary)
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, out / "toy_model.pt")
        typer.echo(f"toy rectangles: {solved:.0%} of 100 fresh images solved "
                   f"({summary['solved_1000']:.1%} of 1000) -> {out / 'toy.json'}")
        return

    from iznet.detect.train import DetectorTrainConfig, DetectorTrainer

    if data is None:
        raise typer.BadParameter("give --data PACK (from `iznet detector-pack`) or --toy", param_hint="--data")
    if init is not None and resume:
        raise typer.BadParameter("give either --init (new run from trained weights) or --resume (continue "
                                 "OUT/last.pt), not both", param_hint="--init")
    from iznet.detect.detector import KIND
    from iznet.utils.checkpoint import load_checkpoint

    init_ckpt = load_checkpoint(init, kind=KIND) if init is not None else None
    # the network of the weights the run starts from (--init) or continues (--resume): width, landmark branch
    start = init_ckpt if init_ckpt is not None else (
        load_checkpoint(out / "last.pt", kind=KIND) if resume and (out / "last.pt").is_file() else None)
    start_kwargs = (start or {}).get("model_kwargs") or {}
    if "width" not in given and backbone == "light" and start_kwargs.get("width") is not None:
        given["width"] = start_kwargs["width"]
    if start_kwargs.get("landmarks"):  # kept frozen; see DetectorTrainConfig
        given["landmarks"] = True
    cfg = DetectorTrainConfig(backbone=backbone, image_size=image_size, epochs=epochs, lr=lr,
                              lambda_coord=lambda_coord, lambda_noobj=lambda_noobj, composite_ratio=composite_ratio,
                              hard_negatives=None if hard_negatives is None else str(hard_negatives),
                              hard_ratio=hard_ratio,
                              workers=workers, seed=seed, bf16=not no_bf16, max_minutes=max_minutes, **given)
    trainer = DetectorTrainer(cfg, data, out, device=dev, meta={"command": _command_line()})
    if resume:
        trainer.resume(out / "last.pt")
    elif init is not None:
        trainer.init_from(init, ckpt=init_ckpt)
    bar = tqdm(total=trainer.total_steps, initial=trainer.step, desc=f"train {backbone}", unit="step",
               file=sys.stderr, dynamic_ncols=True)

    def on_event(ev: dict) -> None:
        if ev["event"] == "step":
            bar.update(1)
            bar.set_postfix(epoch=ev["epoch"] + 1, loss=f"{ev['loss']:.3f}", refresh=False)
        elif ev["event"] == "epoch":
            bar.write(f"epoch {ev['epoch']}: loss {ev.get('loss_loss', float('nan')):.3f}, "
                      f"dev AP@0.5 {ev.get('dev_ap50', float('nan')):.3f}, recall@0.5 "
                      f"{ev.get('dev_recall50', float('nan')):.3f}, {ev['images_per_s']:.0f} images/s")

    trainer.on_event = on_event
    summary = trainer.fit()
    bar.close()
    typer.echo(f"done: {summary['epochs']} epochs in {summary['train_seconds']:.0f} s; best dev AP@0.5 "
               f"{summary['best_dev_ap50']:.3f}; detector: {summary['best']}")
    if cfg.landmarks:
        typer.echo("note: the landmark branch came from --init unchanged while the rest trained; its points "
                   "may have drifted: retrain it with scripts/train_landmarks.py --detector "
                   f"{summary['best']} (docs/detection.md, Landmarks)")
