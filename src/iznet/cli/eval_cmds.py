"""``iznet eval``: measure an embedder on LFW verification or on identification of a set of people."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from iznet.cli.app import app

eval_app = typer.Typer(help="Measure an embedder: LFW verification, closed/open-set identification.",
                       no_args_is_help=True)
app.add_typer(eval_app, name="eval")

_EMBEDDER_HELP = ("'raw[:SIZE]', 'pca[:N]' (options: 'pca:128,whiten=true,size=64,gray=true,crop=0.8'), "
                  "a model name (random weights) or an embedder checkpoint file")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _warn_untrained(embedder) -> None:
    if not embedder.trained:
        typer.secho(f"warning: {embedder.name} has random weights (no checkpoint); these numbers measure an "
                    "untrained network", fg=typer.colors.YELLOW, err=True)


def _command(parts: list[str], options: dict[str, Any]) -> str:
    for flag, value in options.items():
        if value is None or value is False:
            continue
        parts.append(flag if value is True else f"{flag} {value}")
    return " ".join(parts)


@eval_app.command("lfw")
def lfw(
    embedder: str = typer.Option(..., "--embedder", "-e", help=_EMBEDDER_HELP),
    protocol: str = typer.Option("view2", help="view2 (10 person-disjoint folds) or view1 (dev train/test)"),
    pack: Optional[Path] = typer.Option(None, help="LFW pack (iznet pack lfw); default: read the LFW folder"),
    data: Optional[Path] = typer.Option(None, help="LFW folder or data root holding lfw/ (default: data root)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write all numbers to this JSON file"),
    far: float = typer.Option(1e-3, help="target false-accept rate of VAL"),
    tta: Optional[bool] = typer.Option(None, "--tta/--no-tta", help="flip test-time augmentation (networks)"),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1 (default: automatic)"),
    batch_size: int = typer.Option(256, min=1, help="images per forward pass"),
) -> None:
    """LFW verification: mean ± std accuracy, AUC, VAL at a FAR, EER."""
    from iznet.eval.protocols import evaluate_lfw
    from iznet.recognize.embedder import load_embedder
    from iznet.utils.io import write_json

    emb = load_embedder(embedder, device=device, tta=tta)
    _warn_untrained(emb)
    res = evaluate_lfw(emb, pack, protocol, data, far=far, batch_size=batch_size)
    res["extra"]["command"] = _command(["iznet", "eval", "lfw"], {
        "--embedder": embedder, "--protocol": protocol, "--pack": pack, "--data": data,
        "--far": far if far != 1e-3 else None, "--tta" if tta else "--no-tta": tta is not None or None})
    res["extra"]["trained"] = emb.trained
    e = res["extra"]
    typer.echo(f"LFW {protocol}: {res['n_pairs']} pairs; embedder {e['embedder']['name']}; images: {e['images']}")
    if protocol == "view2":
        typer.echo(f"  accuracy     {_pct(res['accuracy'])} ± {100 * res['accuracy_std']:.2f} (std over 10 folds; "
                   f"standard error {100 * res['accuracy_sem']:.2f})")
        typer.echo("  per fold     " + " ".join(f"{100 * a:.1f}" for a in res["fold_accuracy"]))
    else:
        typer.echo(f"  accuracy     {_pct(res['accuracy'])} (threshold {res['thresholds'][0]:.4f} from pairsDevTrain)")
    typer.echo(f"  AUC          {res['auc']:.4f}")
    typer.echo(f"  EER          {_pct(res['eer'])}")
    where = "all pairs pooled" if protocol == "view2" else "threshold from pairsDevTrain, read on pairsDevTest"
    typer.echo(f"  VAL@FAR={far:g}  {_pct(res['val'])} ({where}; FAR reached {_pct(res['val_far'])})")
    if res["val_kfold"] is not None:
        typer.echo(f"  VAL k-fold   {_pct(res['val_kfold'])} ± {100 * res['val_kfold_std']:.2f}")
    typer.echo(f"  time         {e['seconds']:.1f} s")
    if json_out is not None:
        write_json(json_out, res)
        typer.echo(f"wrote {json_out}")


@eval_app.command("ident")
def ident(
    embedder: str = typer.Option(..., "--embedder", "-e", help=_EMBEDDER_HELP),
    data: Optional[Path] = typer.Option(None, help="identity folder root/<person>/<image> of face crops"),
    pack: Optional[Path] = typer.Option(None, help="pack of the identity folder (instead of --data)"),
    enroll: int = typer.Option(5, "--enroll", "-k", min=1, help="images enrolled per person (first in name order)"),
    open_set_far: Optional[float] = typer.Option(None, "--open-set-far",
                                                 help="also run open-set rejection at this target FAR (half the "
                                                      "people unknown, seeded)"),
    seed: int = typer.Option(0, help="seed of the known/unknown split"),
    fit: Optional[Path] = typer.Option(None, help="folder or pack of other people to fit a baseline on "
                                                  "(default: the enrolment images)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write all numbers to this JSON file"),
    tta: Optional[bool] = typer.Option(None, "--tta/--no-tta", help="flip test-time augmentation (networks)"),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1 (default: automatic)"),
    batch_size: int = typer.Option(256, min=1, help="images per forward pass"),
) -> None:
    """Closed-set identification (rank-1 for nn, centroid, medoid prototypes), optionally open-set."""
    from iznet.errors import DataError
    from iznet.eval.protocols import evaluate_identification
    from iznet.recognize.embedder import load_embedder
    from iznet.utils.io import write_json

    if (data is None) == (pack is None):
        raise DataError("give exactly one of --data FOLDER or --pack FILE")
    emb = load_embedder(embedder, device=device, tta=tta)
    _warn_untrained(emb)
    res = evaluate_identification(emb, data if data is not None else pack, k=enroll, fit_people=fit,
                                  open_set_far=open_set_far, seed=seed, batch_size=batch_size)
    res["command"] = _command(["iznet", "eval", "ident"], {
        "--embedder": embedder, "--data": data, "--pack": pack, "--enroll": enroll, "--open-set-far": open_set_far,
        "--seed": seed if open_set_far is not None and seed else None, "--fit": fit,
        "--tta" if tta else "--no-tta": tta is not None or None})
    res["trained"] = emb.trained
    typer.echo(f"identification: {res['n_people']} people, {res['k']} enrolled each ({res['n_enrolled']} images), "
               f"{res['n_probes']} probes; embedder {res['embedder']['name']}; fit: {res['fit'] or 'none'}")
    typer.echo("  prototype  rank-1")
    for kind, acc in res["rank1"].items():
        typer.echo(f"  {kind:<9}  {_pct(acc)}")
    o = res["open_set"]
    if o is not None:
        typer.echo(f"  open set ({o['n_known_people']} known, {o['n_unknown_people']} unknown; threshold "
                   f"{o['threshold']:.4f} for FAR {o['target_far']:g} on enrolled pairs):")
        typer.echo(f"    strangers rejected          {_pct(o['strangers_rejected'])} of {o['n_stranger_probes']}")
        typer.echo(f"    known accepted              {_pct(o['known_accepted'])} of {o['n_known_probes']}")
        typer.echo(f"    known accepted and correct  {_pct(o['known_accepted_correct'])}")
    if json_out is not None:
        write_json(json_out, res)
        typer.echo(f"wrote {json_out}")
