"""``iznet enroll`` and ``iznet gallery ...``: put people into the gallery and look after it.

Only parsing and formatting here; the work is done by :mod:`iznet.recognize.pipeline` and
:class:`iznet.recognize.gallery.Gallery`. See ``docs/system.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from iznet.cli.app import app

gallery_app = typer.Typer(help="Look after the gallery of known people (list, show, remove, rename, rebuild, "
                               "calibrate).", no_args_is_help=True)
app.add_typer(gallery_app, name="gallery")

GALLERY_HELP = "gallery file (default: $IZNET_GALLERY, else ~/.local/share/iznet/gallery.db)"
EMBEDDER_HELP = ("embedder: a checkpoint file, 'raw[:SIZE]', ..., or several joined by '+' (an ensemble) "
                 "(default: the bundled one)")
DETECTOR_HELP = "face detector: 'haar', 'yunet:PATH' or a detector checkpoint (default: the bundled one)"
_SHOW_MAX = 20


def _echo_list(title: str, rows: list[str], limit: int = _SHOW_MAX) -> None:
    if not rows:
        return
    typer.echo(f"{title} ({len(rows)}):", err=True)
    for r in rows[:limit]:
        typer.echo(f"  {r}", err=True)
    if len(rows) > limit:
        typer.echo(f"  ... and {len(rows) - limit} more", err=True)


def _open(gallery: Optional[Path], create: bool = False):
    from iznet.recognize.gallery import Gallery
    from iznet.recognize.pipeline import default_gallery_path

    return Gallery(default_gallery_path(gallery), create=create)


def _report_person(rep) -> None:
    verb = "enrolled new person" if rep.created else "added to"
    dup = f", {len(rep.duplicates)} already enrolled" if rep.duplicates else ""
    typer.echo(f"{verb} {rep.name}: {len(rep.added)} image(s) added{dup}")


@app.command("enroll")
def enroll_cmd(
    name: Optional[str] = typer.Argument(None, help="the person's name"),
    images: Optional[List[Path]] = typer.Argument(None, help="photos of that one person (or face crops with "
                                                             "--no-detect)"),
    from_folder: Optional[Path] = typer.Option(None, "--from-folder", help="enrol everyone in ROOT/<person>/<image> "
                                                                          "instead of NAME IMAGES"),
    gallery: Optional[Path] = typer.Option(None, "--gallery", "-g", help=GALLERY_HELP),
    embedder: Optional[str] = typer.Option(None, "--embedder", "-e", help=EMBEDDER_HELP),
    detector: Optional[str] = typer.Option(None, "--detector", "-d", help=DETECTOR_HELP),
    no_detect: bool = typer.Option(False, "--no-detect", help="the images already are face crops: use each whole "
                                                             "image (its centre square) as the face"),
    method: str = typer.Option("centroid", "--method", help="prototypes stored: centroid, medoid, kmeans"),
    k: int = typer.Option(3, "--k", min=1, help="centres per person for --method kmeans"),
    runtime: str = typer.Option("torch", "--runtime", help="torch, or onnx: run the networks with onnxruntime "
                                "(the same embedder tag: galleries are shared between the two)"),
    onnx_dir: Optional[Path] = typer.Option(None, "--onnx-dir", help="ONNX cache for --runtime onnx (default: "
                                            "$IZNET_ONNX_DIR, else ~/.cache/iznet/onnx)"),
) -> None:
    """Enrol a person from photos (the most confident face of each is kept), or everyone in a folder.

    Exit status 1 when some image could not be enrolled (unreadable, no face); the others are enrolled.
    """
    from iznet.loading import load_detector, load_embedder
    from iznet.recognize import pipeline as pl

    if from_folder is not None and (name or images):
        raise typer.BadParameter("give either NAME IMAGES... or --from-folder ROOT, not both")
    if from_folder is None and (not name or not images):
        raise typer.BadParameter("give NAME and at least one image (or --from-folder ROOT)")
    if embedder is None:  # the model this gallery was enrolled with (e.g. by `iznet fit`), if it recorded one
        from iznet.loading import gallery_embedder

        if (embedder := gallery_embedder(pl.default_gallery_path(gallery))) is not None:
            typer.echo(f"embedder: {embedder} (the one this gallery was enrolled with)", err=True)
    emb = load_embedder(spec=embedder, runtime=runtime, onnx_dir=onnx_dir)
    det = None if no_detect else load_detector(spec=detector, runtime=runtime, onnx_dir=onnx_dir)
    with _open(gallery, create=True) as g:
        if from_folder is None:
            rep = pl.enroll_files(g, name, images, emb, det, method=method, k=k)
            _report_person(rep)
            problems = [(p, r) for p, r in rep.skipped]
            several, headshots = rep.several_faces, rep.headshots
        else:
            from tqdm import tqdm

            total = pl.count_images(from_folder)
            with tqdm(total=total, unit="img", desc="enrolling", dynamic_ncols=True) as bar:
                reports, problems = pl.enroll_folder(g, from_folder, emb, det, method=method, k=k,
                                                     progress=bar.update)
            for rep in reports:
                _report_person(rep)
            _echo_list("ignored (not ROOT/<person>/<image>)", pl.ignored_in_folder(from_folder))
            several = [s for rep in reports for s in rep.several_faces]
            headshots = [h for rep in reports for h in rep.headshots]
            n_added = sum(len(r.added) for r in reports)
            typer.echo(f"{len(reports)} people, {n_added} images enrolled from {from_folder}")
        typer.echo(f"gallery {g.path}, embedder {pl.embedder_tag(emb)}")
    _echo_list("photos with several faces (the most confident was kept; check them)",
               [f"{p}: {n} faces" for p, n in several])
    _echo_list("faces found by the headshot fallback only (a weak face filling the picture; check them)",
               [str(p) for p in headshots])
    _echo_list("not enrolled", [f"{p}: {r}" for p, r in problems])
    if problems:
        raise typer.Exit(1)


@gallery_app.command("list")
def list_cmd(
    gallery: Optional[Path] = typer.Option(None, "--gallery", "-g", help=GALLERY_HELP),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Everyone in the gallery, with their number of images and embedders."""
    import json

    with _open(gallery) as g:
        people = g.people()
        tags = g.embedders()
        thresholds = {t: g.threshold(t) for t in tags}
        path = g.path
    if as_json:
        doc = {"gallery": str(path),
               "embedders": [{"tag": t, "dim": d, "threshold": thresholds[t]} for t, d in tags.items()],
               "people": [{"name": p.name, "images": p.n_images, "embedders": list(p.embedders),
                           "created": p.created} for p in people]}
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    typer.echo(f"gallery {path}: {len(people)} people, {sum(p.n_images for p in people)} images")
    for t, d in tags.items():
        th = "no threshold" if thresholds[t] is None else f"threshold {thresholds[t]:.4f}"
        typer.echo(f"embedder {t} ({d}-d, {th})")
    if not people:
        typer.echo("the gallery is empty: enrol people with `iznet enroll NAME PHOTOS...`")
        return
    width = max(4, *(len(p.name) for p in people))
    typer.echo(f"{'name':<{width}}  {'images':>6}  embedders")
    for p in people:
        typer.echo(f"{p.name:<{width}}  {p.n_images:>6}  {', '.join(p.embedders) or '-'}")


@gallery_app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="the person"),
    gallery: Optional[Path] = typer.Option(None, "--gallery", "-g", help=GALLERY_HELP),
) -> None:
    """One person's images and stored prototypes."""
    with _open(gallery) as g:
        info = g.person(name)
    typer.echo(f"{info.name}: {info.n_images} image(s), enrolled {info.created}")
    for tag, method, k, count in info.prototypes:
        kk = f", k={k}" if method == "kmeans" else ""
        typer.echo(f"  prototypes {method}{kk} for {tag}: {count} vector(s)")
    for rec in info.images:
        exists = "" if Path(rec.path).exists() else "  [file missing]"
        typer.echo(f"  #{rec.id}  {rec.path}  sha256 {rec.sha256[:12]}  added {rec.added}{exists}")


@gallery_app.command("remove")
def remove_cmd(
    name: str = typer.Argument(..., help="the person"),
    gallery: Optional[Path] = typer.Option(None, "--gallery", "-g", help=GALLERY_HELP),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
) -> None:
    """Remove a person with their images, embeddings and prototypes (the image files are not touched)."""
    with _open(gallery) as g:
        info = g.person(name)  # unknown name: a clear error before asking
        if not yes:
            typer.confirm(f"remove {info.name} and their {info.n_images} image(s) from {g.path}?", abort=True)
        n = g.remove(info.name)
    typer.echo(f"removed {info.name} ({n} image(s))")


@gallery_app.command("rename")
def rename_cmd(
    old: str = typer.Argument(..., help="current name"),
    new: str = typer.Argument(..., help="new name"),
    gallery: Optional[Path] = typer.Option(None, "--gallery", "-g", help=GALLERY_HELP),
) -> None:
    """Rename a person."""
    with _open(gallery) as g:
        stored = g.rename(old, new)
    typer.echo(f"renamed {old} to {stored}")


@gallery_app.command("rebuild")
def rebuild_cmd(
    embedder: str = typer.Option(..., "--embedder", "-e", help="the new embedder (checkpoint file, 'raw', ...)"),
    gallery: Optional[Path] = typer.Option(None, "--gallery", "-g", help=GALLERY_HELP),
) -> None:
    """Re-embed every enrolled image with another embedder, all or nothing.

    Images whose files vanished or changed are listed and nothing is written (exit status 1).
    """
    from tqdm import tqdm

    from iznet.loading import load_embedder
    from iznet.recognize import pipeline as pl

    emb = load_embedder(spec=embedder)
    with _open(gallery) as g:
        with tqdm(total=len(g.images()), unit="img", desc="re-embedding", dynamic_ncols=True) as bar:
            rep = pl.rebuild_embeddings(g, emb, progress=bar.update)
        path = g.path
        threshold = g.threshold(rep.tag)
    if rep.missing:
        _echo_list("images that cannot be re-embedded", [f"{p}: {r}" for p, r in rep.missing])
        typer.echo(f"nothing written to {path}: restore those files, or remove their people"
                   " (`iznet gallery remove NAME`) and enrol them again", err=True)
        raise typer.Exit(1)
    typer.echo(f"re-embedded {rep.written} image(s) with {rep.tag} in {path}")
    if rep.without_box:
        typer.echo(f"note: {rep.without_box} image(s) had no recorded face box and were used whole", err=True)
    if threshold is None:
        typer.echo(f"no unknown-face threshold for {rep.tag} yet: run `iznet gallery calibrate --embedder {embedder}`",
                   err=True)


@gallery_app.command("calibrate")
def calibrate_cmd(
    pairs: str = typer.Option("view1", "--pairs", help="'view1' (LFW pairsDevTrain + pairsDevTest), 'view2' "
                                                       "(pairs.txt) or an LFW-format pair file"),
    lfw: Optional[Path] = typer.Option(None, "--lfw", help="LFW folder or data root holding lfw/ (default: "
                                                           "$IZNET_DATA, else ../shared/data)"),
    far: float = typer.Option(1e-3, "--far", min=0.0, max=1.0, help="false-accept rate aimed at"),
    value: Optional[float] = typer.Option(None, "--value", help="store this threshold as is (no pairs needed)"),
    clear: bool = typer.Option(False, "--clear", help="forget the stored threshold of this embedder"),
    dry_run: bool = typer.Option(False, "--dry-run", help="compute and print, store nothing"),
    embedder: Optional[str] = typer.Option(None, "--embedder", "-e", help=EMBEDDER_HELP),
    gallery: Optional[Path] = typer.Option(None, "--gallery", "-g", help=GALLERY_HELP),
) -> None:
    """Choose and store the unknown-face threshold of an embedder: the largest distance whose false-accept
    rate on impostor pairs (people who are not in the gallery) is at most --far."""
    from iznet.loading import load_embedder
    from iznet.recognize import pipeline as pl

    emb = load_embedder(spec=embedder)
    tag = pl.embedder_tag(emb)
    if clear:
        t = None
    elif value is not None:
        t = float(value)
    else:
        from iznet.eval.calibration import calibrate_on_lfw

        cal = calibrate_on_lfw(emb, pairs=pairs, lfw_root=lfw, target_far=far)
        t = cal.threshold
        typer.echo(f"{cal.source}: {cal.n_genuine} genuine and {cal.n_impostor} impostor pairs")
        typer.echo(f"threshold {t:.4f} for FAR <= {far:g}: measured FAR {cal.far:.4f}, TAR {cal.tar:.4f}")
    if dry_run:
        return
    with _open(gallery, create=True) as g:
        if tag not in g.embedders():
            typer.echo(f"note: gallery {g.path} holds no embeddings from {tag} yet", err=True)
        g.set_threshold(tag, t)
        path = g.path
    what = "cleared the threshold" if t is None else f"stored threshold {t:.4f}"
    typer.echo(f"{what} for {tag} in {path}")
