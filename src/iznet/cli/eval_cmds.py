"""``iznet eval``: measure an embedder on LFW verification or on identification of a set of people, or the whole
system (detect, crop, embed, match) on a group of people (``eval group``, :mod:`iznet.eval.group`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from iznet.cli.app import app

eval_app = typer.Typer(help="Measure an embedder: LFW verification, closed/open-set identification; the whole "
                            "system on a group (eval group).",
                       no_args_is_help=True)
app.add_typer(eval_app, name="eval")

_EMBEDDER_HELP = ("'raw[:SIZE]', 'pca[:N]' (options: 'pca:128,whiten=true,size=64,gray=true,crop=0.8'), "
                  "a model name (random weights), an embedder checkpoint file, or several joined by '+' "
                  "(an ensemble: 'a.pt+b.pt')")


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
    from iznet.loading import load_embedder
    from iznet.utils.io import write_json

    emb = load_embedder(spec=embedder, device=device, tta=tta, fixed=False)
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
    from iznet.loading import load_embedder
    from iznet.utils.io import write_json

    if (data is None) == (pack is None):
        raise DataError("give exactly one of --data FOLDER or --pack FILE")
    emb = load_embedder(spec=embedder, device=device, tta=tta, fixed=False)
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


@eval_app.command("group")
def group(
    data: Path = typer.Option(..., "--data", help="group folder ROOT/<person>/<image> (or a folder holding only "
                                                  "images/, e.g. ../shared/data/glint24)"),
    enroll: int = typer.Option(5, "--enroll", "-k", min=1, help="pictures enrolled per person (first in name order)"),
    embedder: Optional[str] = typer.Option(None, "--embedder", "-e", help="embedder (default: the bundled one)"),
    detector: Optional[str] = typer.Option(None, "--detector", "-d", help="haar, yunet:PATH or a detector "
                                                                         "checkpoint (default: the bundled one)"),
    system: str = typer.Option("iznet", "--system", help="iznet, or dlib (dlib's HOG detector and ResNet "
                                                         "descriptor; needs the dlib extra)"),
    no_detect: bool = typer.Option(False, "--no-detect", help="the pictures are face crops: skip detection, the "
                                                              "centre square is the face"),
    pad: float = typer.Option(2.0, "--pad", min=1.0, help="detect on the picture centred on a black canvas this "
                                                          "many times its size (1: no padding)"),
    threshold: Optional[str] = typer.Option(None, "--threshold", "-t",
                                            help="unknown-face distance, or 'none' (default: the bundled "
                                                 "embedder's calibrated one; 0.6 for dlib)"),
    method: str = typer.Option("centroid", "--method", help="prototypes: centroid, medoid, all (nearest picture), "
                                                          "kmeans"),
    max_probes: Optional[int] = typer.Option(None, "--max-probes", min=1, help="at most this many probes per "
                                                                               "person (default: all)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write the report (with every probe) to this file"),
) -> None:
    """End-to-end accuracy: enrol the first K pictures per person, label the rest with the whole pipeline (detect,
    crop, embed, match) and count correct / wrong / unknown / no face."""
    import tempfile

    from tqdm import tqdm

    from iznet.errors import DataError
    from iznet.eval.group import (PaddedDetector, WholeImageDetector, bundled_threshold, evaluate_group,
                                  split_group)
    from iznet.recognize import pipeline as pl
    from iznet.recognize.gallery import Gallery
    from iznet.utils.io import write_json

    if system not in ("iznet", "dlib"):
        raise typer.BadParameter("choose iznet or dlib", param_hint="--system")
    if threshold is None:
        if system == "dlib":
            from iznet.reference.dlib_ref import DLIB_THRESHOLD
            thr: float | None = DLIB_THRESHOLD
        elif embedder is None:
            thr = bundled_threshold()
        else:
            raise DataError(f"no threshold is known for embedder {embedder!r}: give --threshold T (e.g. from "
                            "`iznet gallery calibrate`) or --threshold none (every face gets the nearest name)")
    elif threshold.strip().lower() == "none":
        thr = None
    else:
        try:
            thr = float(threshold)
        except ValueError:
            raise typer.BadParameter(f"{threshold!r}: give a distance or 'none'", param_hint="--threshold") from None
    total = sum(len(s.enroll) + len(s.probes) for s in split_group(data, enroll, max_probes))
    with tempfile.TemporaryDirectory(prefix="iznet_group_") as tmp, Gallery(Path(tmp) / "group.db") as g:
        if system == "dlib":
            from iznet.reference.dlib_ref import DlibHogDetector, DlibPipeline

            det = WholeImageDetector() if no_detect else PaddedDetector(DlibHogDetector(), pad)
            pipe = DlibPipeline(det, g, threshold=thr, prototype_method=method)
        else:
            from iznet.loading import load_detector, load_embedder

            det = WholeImageDetector() if no_detect else PaddedDetector(load_detector(spec=detector), pad)
            pipe = pl.Pipeline(det, load_embedder(spec=embedder), g, prototype_method=method, threshold=thr,
                               margin_scale=1.0 if no_detect else pl.FACE_CROP_SCALE)
        with tqdm(total=total, unit="img", desc="group", dynamic_ncols=True, disable=total < 50) as bar:
            rep = evaluate_group(pipe, data, enroll=enroll, max_probes=max_probes, progress=bar.update,
                                 settings={"system": system, "detect": not no_detect,
                                           "pad": None if no_detect else pad})
    rep.settings["command"] = _command(["iznet", "eval", "group"], {
        "--data": data, "--enroll": enroll, "--embedder": embedder, "--detector": detector,
        "--system": system if system != "iznet" else None, "--no-detect": no_detect,
        "--pad": pad if (pad != 2.0 and not no_detect) else None, "--threshold": threshold,
        "--method": method if method != "centroid" else None, "--max-probes": max_probes})
    c, s = rep.counts(), rep.shares()
    n_enr = sum(rep.enrolled.values())
    thr_txt = "none" if rep.settings["threshold"] is None else f"{rep.settings['threshold']:.4f}"
    typer.echo(f"group {rep.root}: {len(rep.people)} people, {n_enr} pictures enrolled ({len(rep.enroll_skipped)} "
               f"skipped), {c['n']} probes; {system}: detector {rep.settings['detector']}, embedder "
               f"{rep.settings['embedder']}, {method}, threshold {thr_txt}")
    for k, label in (("correct", "named correctly"), ("wrong", "named wrongly"), ("unknown", "called unknown"),
                     ("no_face", "no face found"), ("nearest_correct", "nearest person right")):
        typer.echo(f"  {label:<22} {_pct(s[k]):>8}  ({c[k]})")
    missing = [p for p, n in rep.enrolled.items() if n == 0]
    if missing:
        typer.secho(f"warning: nobody enrolled for {', '.join(missing)} (no usable picture)", fg=typer.colors.YELLOW,
                    err=True)
    typer.echo(f"  time                   {rep.seconds['enroll']:.1f} s enrolling, {rep.seconds['label']:.1f} s "
               f"labelling ({1000 * rep.seconds['label_per_image']:.1f} ms per picture)")
    if json_out is not None:
        write_json(json_out, rep.to_json())
        typer.echo(f"wrote {json_out}")


@eval_app.command("view2")
def view2_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="the run folder (OUT/fold0 ... fold9); view2.json goes there"),
    train: bool = typer.Option(False, "--train", help="first train the fold models that are missing (one per fold, "
                               "on the LFW people outside it; resumable); needs --pack and --data-root"),
    pack: Optional[Path] = typer.Option(None, "--pack", help="LFW pack (`iznet pack lfw`), for --train"),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="folder holding lfw/, for --train"),
    folds: str = typer.Option("0,1,2,3,4,5,6,7,8,9", "--folds", help="comma-separated fold numbers"),
    model: str = typer.Option("nn4_small", "--model", help="registered model (for --train)"),
    input_size: Optional[int] = typer.Option(None, "--input-size", help="the model's input size (for --train)"),
    mining: str = typer.Option("semi-hard", "--mining", help="triplet mining (for --train)"),
    p: int = typer.Option(32, "--p", help="people per batch (for --train)"),
    k: int = typer.Option(4, "--k", help="images per person (for --train)"),
    lr: float = typer.Option(0.05, "--lr", help="learning rate (for --train)"),
    steps: int = typer.Option(3000, "--steps", help="steps per fold (for --train)"),
    warmup: int = typer.Option(200, "--warmup", help="warm-up steps (for --train)"),
    seed: int = typer.Option(0, "--seed", help="base seed; fold k uses seed + k (for --train)"),
    cpu_bf16: bool = typer.Option(False, "--cpu-bf16", help="bf16 autocast of CPU steps (for --train)"),
    fuse_runs: Optional[str] = typer.Option(None, "--fuse", help="RUN,RUN,...: score the ensemble of these runs "
                                            "(folders or view2_distances.npz files) into OUT, no training"),
    sizes: bool = typer.Option(False, "--sizes", help="with --fuse: every subset of the runs, per ensemble size"),
    stored: Optional[Path] = typer.Option(None, "--stored", help="this run's view2_distances.npz, read for the "
                                          "folds with no folder in OUT"),
) -> None:
    """LFW View 2 unrestricted with no outside data: one model per fold trained on the people outside it
    (--train), then the 10-fold table of the run (or of an ensemble of runs, --fuse)."""
    from iznet.errors import DataError
    from iznet.eval import view2
    from iznet.utils.io import write_json

    try:
        fold_list = [int(f) for f in folds.split(",") if f.strip()]
    except ValueError:
        raise typer.BadParameter(f"{folds!r}: give fold numbers like 0,1,2", param_hint="--folds") from None
    if fuse_runs:
        runs = [Path(r) for r in fuse_runs.split(",") if r.strip()]
        if sizes:
            res = view2.ensemble_sizes(runs, fold_list)
            write_json(out / "ensemble_sizes.json", res)
            for z in res["sizes"]:
                typer.echo(f"{z['size']} runs ({z['subsets']} subsets): accuracy {_pct(z['accuracy_mean'])} "
                           f"[{_pct(z['accuracy_min'])}, {_pct(z['accuracy_max'])}]")
            return
        res = view2.fuse(runs, fold_list)
        write_json(out / "view2.json", res)
    else:
        if sizes:
            raise typer.BadParameter("--sizes goes with --fuse", param_hint="--sizes")
        if train:
            if pack is None or data_root is None:
                raise DataError("--train needs --pack and --data-root")
            from iznet.engine.config import TrainConfig
            from iznet.engine.view2 import train_folds

            cfg = TrainConfig(model=model, model_kwargs={"input_size": input_size} if input_size else {},
                              mining=mining, p=p, k=k, lr=lr, steps=steps, warmup_steps=warmup, seed=seed,
                              eval_every=0, cpu_bf16=cpu_bf16)

            def report(e: dict) -> None:
                if e.get("skipped"):
                    typer.echo(f"fold {e['fold']}: trained already", err=True)
                else:
                    s = e["summary"]
                    typer.echo(f"fold {e['fold']}: test accuracy {_pct(s['test']['acc_at_threshold'])} at the dev "
                               f"threshold, {s['steps']} steps, {e['seconds']:.0f} s", err=True)

            train_folds(out, fold_list, cfg, pack=pack, data_root=data_root, command="iznet eval view2 --train",
                        on_fold=report)
        res = view2.aggregate(out, fold_list, stored)
        write_json(out / "view2.json", res)
        typer.echo(f"distances kept in {res['distances_file']}")
    typer.echo(f"LFW View 2 ({len(fold_list)} folds): accuracy {_pct(res['accuracy'])} ± "
               f"{_pct(res['accuracy_std'])}, AUC {res['auc']:.4f}, EER {_pct(res['eer'])} -> {out / 'view2.json'}")
