"""``iznet fit``: fine-tune on a group's photos, keep the better embedder, enrol everyone (:mod:`iznet.fit`).

Only parsing and formatting here. See ``docs/training.md`` ("Fine-tuning on your own group").
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from iznet.cli.app import app
from iznet.engine.config import TrainConfig

_D = TrainConfig()


@app.command("fit")
def fit_cmd(
    photos: Path = typer.Argument(..., help="photos of the group: PHOTOS/<person>/<photo>"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for faces/, run/, gallery.db and fit.json "
                                                      "(run the same command again to resume)"),
    steps: int = typer.Option(300, "--steps", min=1, help="fine-tuning steps (8 people x 4 faces each)"),
    lr: float = typer.Option(0.005, "--lr", help="learning rate of the fine-tune"),
    freeze_trunk: bool = typer.Option(False, "--freeze-trunk", help="train only the embedding head"),
    rehearse: Optional[str] = typer.Option(None, "--rehearse", help="a pack or folder of other people mixed "
                                           "into every batch (less forgetting; docs/training.md)"),
    far: float = typer.Option(_D.calibrate_far, "--far", min=0.0, max=0.99, help="unknown-face rule: at most "
                              "this share of the held-out faces named as another person"),
    strangers: float = typer.Option(_D.calibrate_stranger_far, "--strangers", min=0.0, max=0.99,
                                    help="and at most this share named when their person is not enrolled"),
    init: str = typer.Option("bundled", "--init", help="the base embedder checkpoint ('bundled': the shipped one)"),
) -> None:
    """Fine-tune the embedder on a group's photos, keep it only if it names more held-out faces right than the
    base one, and enrol everyone into OUT/gallery.db with the kept model and its unknown-face threshold."""
    from iznet.fit import fit_group

    def progress(e: dict) -> None:
        if e["event"] == "stage":
            typer.echo({"faces": "cutting faces", "fine-tune": "fine-tuning", "compare": "comparing on the "
                        "held-out faces", "enrol": "enrolling"}[e["stage"]] + " ...", err=True)
        elif e["event"] == "eval":
            typer.echo(f"  step {e['step']}: development AUC {e['dev_auc']:.3f}", err=True)

    rep = fit_group(photos, out, init=init, steps=steps, lr=lr, freeze_trunk=freeze_trunk, rehearse=rehearse,
                    far=far, stranger_far=strangers, on_event=progress)
    typer.echo(f"{rep.people} people, {rep.photos} photos, {rep.faces} faces ({len(rep.no_face)} photos with no "
               f"face); trained on {rep.train_faces}, held out {rep.held_out_faces}")
    typer.echo(rep.table())
    typer.echo(f"enrolled {rep.enrolled} photos into {rep.gallery} with the {rep.chosen} embedder"
               + (" and the unknown-face rule it was shipped with" if rep.rule == "shipped" else
                  f" and the threshold chosen on the held-out faces ({rep.threshold:.4f})"))
    for w in rep.warnings:
        typer.echo(f"warning: {w}", err=True)
    for path, why in rep.skipped:
        typer.echo(f"  skipped {path}: {why}", err=True)
    typer.echo(f"label new photos: iznet label PHOTOS -g {rep.gallery}   (the gallery remembers its embedder, "
               f"{rep.embedder})")
