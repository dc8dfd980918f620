"""``iznet label``: red boxes and names on photos; ``iznet extract-faces``: photos -> a face dataset.

Only parsing and formatting here; the work is done by :class:`iznet.recognize.pipeline.Pipeline` and
:func:`iznet.recognize.extract.extract_faces`. See ``docs/system.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from iznet.cli.app import app
from iznet.cli.detect_cmds import CONF_HELP, DETECTOR_TTA_HELP, LABEL_RUNTIME_HELP, ONNX_DIR_HELP, RELOOK_HELP
from iznet.cli.gallery_cmds import DETECTOR_HELP, EMBEDDER_HELP, GALLERY_HELP, _echo_list
from iznet.cli.inputs import expand_inputs, option_value

def _out_stem(path: Path, used: set[str]) -> str:
    stem, n = path.stem, 2
    while stem.casefold() in used:
        stem, n = f"{path.stem}_{n}", n + 1
    used.add(stem.casefold())
    return stem


def _save_jpeg(path: Path, image) -> None:
    from PIL import Image

    from iznet.utils.io import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=92)


def _describe(result) -> str:
    if not result.faces:
        return "no face found"
    return ", ".join(result.labels())


@app.command("label")
def label_cmd(
    inputs: Optional[List[str]] = typer.Argument(None, help="photos, folders (searched recursively) or glob "
                                                            "patterns such as 'trip/*.jpg'"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="folder for NAME_labelled.jpg and NAME.json "
                                                                 "(default: ./labelled; with --json: no images "
                                                                 "unless given)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document per photo (JSON Lines) to stdout "
                                                       "instead of writing .json files"),
    gallery: Optional[Path] = typer.Option(None, "--gallery", "-g", help=GALLERY_HELP),
    embedder: Optional[str] = typer.Option(None, "--embedder", "-e", help=EMBEDDER_HELP),
    detector: Optional[str] = typer.Option(None, "--detector", "-d", help=DETECTOR_HELP),
    detector_tta: str = typer.Option("full", "--detector-tta", help=DETECTOR_TTA_HELP),
    relook: bool = typer.Option(True, "--relook/--no-relook", help=RELOOK_HELP),
    conf: Optional[float] = typer.Option(None, "--conf", min=0.0, max=1.0, help=CONF_HELP),
    threshold: Optional[str] = typer.Option(None, "--threshold", "-t", help="unknown-face distance: a number, "
                                                                            "'stored' (default: the calibrated "
                                                                            "one) or 'none'"),
    method: str = typer.Option("centroid", "--method", help="prototypes: centroid, medoid, kmeans, all"),
    landmarks: bool = typer.Option(False, "--landmarks", help="also draw each face's five landmarks as dots "
                                                              "(detectors that give them; the JSON always "
                                                              "carries them)"),
    demo: bool = typer.Option(False, "--demo", help="label the bundled demo photo with the bundled demo gallery"),
    runtime: str = typer.Option("auto", "--runtime", help=LABEL_RUNTIME_HELP),
    onnx_dir: Optional[Path] = typer.Option(None, "--onnx-dir", help=ONNX_DIR_HELP),
) -> None:
    """Find the faces in photos, name them from the gallery, and draw a red box and name on each.

    Exit status 1 when some input could not be read (the others are still labelled).
    """
    import json

    from tqdm import tqdm

    from iznet.data.images import load_image
    from iznet.errors import ImageError
    from iznet.recognize import pipeline as pl
    from iznet.utils.io import write_json

    from iznet.loading import DetectorOptions, EmbedderOptions, load_for_labelling, parse_threshold

    thr = option_value(parse_threshold, threshold, hint="--threshold")
    det_options = option_value(DetectorOptions, detector, runtime=runtime, tta=detector_tta, conf=conf,
                               onnx_dir=onnx_dir, relook=relook)
    emb_options = option_value(EmbedderOptions, embedder, runtime=runtime, onnx_dir=onnx_dir)
    from iznet.recognize.prototypes import METHODS

    if method not in METHODS:
        raise typer.BadParameter(f"{method!r}: choose one of {', '.join(METHODS)}", param_hint="--method")
    if demo:
        if inputs:
            raise typer.BadParameter("--demo labels the bundled photo; give no PHOTO arguments with it")
        assets = pl.demo_assets()
        inputs, gallery = [str(assets.photo)], assets.gallery
    if not inputs:
        raise typer.BadParameter("give at least one photo, folder or pattern (or --demo)")
    if embedder is None and not demo:  # the model this gallery was enrolled with (e.g. by `iznet fit`)
        from iznet.loading import gallery_embedder

        if (recorded := gallery_embedder(pl.default_gallery_path(gallery))) is not None:
            typer.echo(f"embedder: {recorded} (the one this gallery was enrolled with)", err=True)
            emb_options = option_value(EmbedderOptions, recorded, runtime=runtime, onnx_dir=onnx_dir)
    files, problems = expand_inputs(inputs)
    if out is None and not as_json:
        out = Path("labelled")
    if out is not None and out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} is a file; give a folder", param_hint="--out")
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise typer.BadParameter(f"cannot create the folder {out}: {e.strerror or e}; give a folder you can "
                                     "write", param_hint="--out") from None
    det, emb = load_for_labelling(det_options, emb_options)
    pipe = pl.Pipeline(det, emb, pl.default_gallery_path(gallery), prototype_method=method, threshold=thr)
    for w in pipe.warnings:
        typer.echo(f"warning: {w}", err=True)
    for arg, why in problems:
        typer.echo(f"error: {arg}: {why}", err=True)

    stats = {"photos": 0, "faces": 0, "named": 0, "unknown": 0, "no_face": 0}
    failed = [(a, w) for a, w in problems]
    used: set[str] = set()
    summary_err = as_json
    bar = tqdm(files, unit="photo", desc="labelling", dynamic_ncols=True, disable=len(files) < 2, file=sys.stderr)

    def say(msg: str, err: bool = False) -> None:
        if bar.disable:
            typer.echo(msg, err=err)
        else:
            tqdm.write(msg, file=sys.stderr if err else sys.stdout)

    with bar:
        for f in bar:
            try:
                img = load_image(f)
            except ImageError as e:
                failed.append((str(f), e.reason))
                say(f"error: cannot read {f}: {e.reason}", err=True)
                continue
            res = pipe.label(img, source=f)
            stats["photos"] += 1
            stats["faces"] += len(res.faces)
            stats["named"] += sum(face.known for face in res.faces)
            stats["unknown"] += sum(not face.known for face in res.faces)
            if not res.faces:
                stats["no_face"] += 1
            where = ""
            if out is not None:
                stem = _out_stem(f, used)
                try:
                    _save_jpeg(out / f"{stem}_labelled.jpg", res.draw(img, landmarks=landmarks))
                    if not as_json:
                        write_json(out / f"{stem}.json", res.to_json())
                except OSError as e:
                    raise typer.BadParameter(f"cannot write into {out}: {e.strerror or e}; give a folder you can "
                                             "write", param_hint="--out") from None
                where = f" -> {out / (stem + '_labelled.jpg')}"
            if as_json:
                typer.echo(json.dumps(res.to_json(), ensure_ascii=False))
                if not res.faces:
                    say(f"no face found in {f}", err=True)
            else:
                say(f"{f}: {_describe(res)}{where}" if res.faces else f"no face found in {f}{where}")
    if len(files) + len(problems) > 1 or failed:
        s = stats
        typer.echo(f"{s['photos']} photo(s) labelled: {s['faces']} face(s), {s['named']} named, {s['unknown']} unknown;"
                   f" {s['no_face']} photo(s) with no face; {len(failed)} input(s) could not be read",
                   err=summary_err)
    if failed:
        raise typer.Exit(1)


@app.command("extract-faces")
def extract_faces_cmd(
    photos: Path = typer.Argument(..., help="photos, one sub-folder per person: PHOTOS/<person>/<photo>"),
    out: Path = typer.Argument(..., help="face dataset to write: OUT/<person>/<photo>.jpg"),
    detector: Optional[str] = typer.Option(None, "--detector", "-d", help=DETECTOR_HELP),
    size: int = typer.Option(160, "--size", min=8, help="side of the face crops in pixels"),
    margin: Optional[float] = typer.Option(None, "--margin", help="crop side relative to the face box (default: the "
                                                        "project's crop convention, 1.3)"),
    keep: str = typer.Option("best", "--keep", help="best: the most confident face per photo; all: every face"),
    crop: str = typer.Option("box", "--crop", help="box: the face box times --margin; aligned: the five landmarks "
                                                   "onto the 112x112 template (for embedders trained on aligned "
                                                   "faces; needs a detector with landmarks, e.g. the bundled one)"),
) -> None:
    """Cut the faces out of scraped photos into a face dataset (for training or `iznet enroll --no-detect`).

    Re-runs skip photos already done. Photos with no face or several faces are listed, never guessed silently.
    """
    from tqdm import tqdm

    from iznet.data.crops import FACE_CROP_SCALE
    from iznet.recognize import pipeline as pl
    from iznet.recognize.extract import KEEP_CHOICES, extract_faces

    if keep not in KEEP_CHOICES:
        raise typer.BadParameter(f"choose one of {', '.join(KEEP_CHOICES)}", param_hint="--keep")
    from iznet.data.align import CROP_CONVENTIONS

    if crop not in CROP_CONVENTIONS:
        raise typer.BadParameter(f"choose one of {', '.join(CROP_CONVENTIONS)}", param_hint="--crop")
    from iznet.loading import load_detector

    spec = detector or pl.default_detector_spec()
    det = load_detector(spec=spec)
    total = pl.count_images(photos)
    with tqdm(total=total, unit="photo", desc="extracting", dynamic_ncols=True) as bar:
        rep = extract_faces(photos, out, det, size=size, margin=FACE_CROP_SCALE if margin is None else margin,
                            keep=keep, detector_name=spec, progress=bar.update, crop=crop)
    typer.echo(rep.summary())
    _echo_list("photos with no face", [str(p) for p in rep.no_face])
    kept = "the most confident was kept; check them" if keep == "best" else "all were kept"
    _echo_list(f"photos with several faces ({kept})", [f"{p}: {n} faces" for p, n in rep.several_faces])
    _echo_list("unreadable files (skipped)", [f"{p}: {r}" for p, r in rep.unreadable.skipped])
    _echo_list("person folders without images", [str(p) for p in rep.empty_folders])
