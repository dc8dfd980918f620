"""``iznet cluster``: group the faces of many photos into people (FaceNet's clustering use)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from iznet.cli.app import app
from iznet.cli.gallery_cmds import DETECTOR_HELP, EMBEDDER_HELP


@app.command("cluster")
def cluster_cmd(
    inputs: list[str] = typer.Argument(..., help="photos, folders (searched recursively) or glob patterns"),
    out: Path = typer.Option(..., "--out", "-o", help="new folder: person_NNN/ crops, unsorted/, clusters.json, "
                                                      "index.html"),
    method: str = typer.Option("agglomerative", "--method", help="agglomerative (no number needed), "
                               "chinese-whispers, or kmeans (with --clusters)"),
    threshold: Optional[float] = typer.Option(None, "--threshold", "-t", min=0.01, max=2.0,
                                              help="faces farther apart are not one person [default: the "
                                                   "embedder's clustering threshold, chosen on development "
                                                   "people; else its unknown-face threshold]"),
    clusters: Optional[int] = typer.Option(None, "--clusters", min=1, help="number of people (kmeans)"),
    min_size: int = typer.Option(2, "--min-size", min=1, help="smaller clusters go to unsorted/"),
    min_face: int = typer.Option(24, "--min-face", min=1, help="faces smaller than this (pixels) go to unsorted/"),
    headshots: bool = typer.Option(True, "--headshots/--no-headshots",
                                   help="a photo with no face gets enrolment's headshot fallback (one big face, "
                                        "as in a folder of tight crops)"),
    embedder: Optional[str] = typer.Option(None, "--embedder", "-e", help=EMBEDDER_HELP),
    detector: Optional[str] = typer.Option(None, "--detector", "-d", help=DETECTOR_HELP),
) -> None:
    """Find the people in a pile of photos: every face detected, embedded and grouped; rename the folders and
    `iznet enroll --from-folder OUT` enrols them."""
    from tqdm import tqdm

    from iznet.cli.gallery_cmds import _echo_list
    from iznet.cli.inputs import expand_inputs
    from iznet.recognize.cluster import cluster_photos

    if method == "kmeans" and clusters is None:
        raise typer.BadParameter("kmeans needs the number of people", param_hint="--clusters")
    files, problems = expand_inputs(inputs)
    for arg, why in problems:
        typer.echo(f"error: {arg}: {why}", err=True)
    if not files:
        raise typer.BadParameter("no photos found in the arguments", param_hint="INPUTS")
    from iznet.loading import load_detector, load_embedder

    det, emb = load_detector(spec=detector), load_embedder(spec=embedder)
    with tqdm(total=len(files), unit="photo", desc="faces", dynamic_ncols=True) as bar:
        rep = cluster_photos(files, out, det, emb, method=method, threshold=threshold, n_clusters=clusters,
                             min_size=min_size, min_face=min_face, headshots=headshots, progress=bar.update)
    typer.echo(f"{rep['faces']} faces in {rep['photos']} photos: {rep['clusters']} people, {rep['unsorted']} "
               f"unsorted ({rep['too_small']} too small); threshold {rep['threshold']}")
    _echo_list("photos skipped", [f"{s['photo']}: {s['reason']}" for s in rep["skipped"]])
    _echo_list("faces found by the headshot fallback only (a weak face filling the picture; check them)",
               [f"{f['photo']} -> {f['file']}" for f in rep["faces_list"] if f["headshot"]])
    typer.echo(f"contact sheet: {out / 'index.html'}; rename the person_* folders, then "
               f"`iznet enroll --from-folder {out}`")
    if problems:
        raise typer.Exit(1)
