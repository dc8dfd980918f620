"""``iznet analyze`` (t-SNE, boxplots, medoid tables, accuracy, one HTML report) and ``iznet report``
(one table comparing training runs).

This module parses the options, calls the library and prints. The labelled set is read by
:mod:`iznet.eval.analysis_data`, the numbers come from :mod:`iznet.eval.analysis`, the figures from
:mod:`iznet.eval.plots`, the written files and both reports from :mod:`iznet.eval.report`, and the t-SNE
sequence of a run's snapshots from :mod:`iznet.eval.snapshots`. Those are imported inside the commands,
so ``iznet --help`` stays fast.
"""

from __future__ import annotations

import datetime
import shlex
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import typer

from iznet.cli.app import app
from iznet.errors import IznetError


def _command(parts: Sequence[tuple[str, Any]], positional: Sequence[str]) -> str:
    """The ``iznet analyze`` command line that was run, without the options left at None or False."""
    words = ["iznet", "analyze", *positional]
    for flag, value in parts:
        if value is None or value is False:
            continue
        words.append(flag) if value is True else words.extend([flag, f"{value:g}" if isinstance(value, float)
                                                              else str(value)])
    return shlex.join(words)


# ------------------------------------------------------------------------------------ analyze
@app.command("analyze")
def analyze(
    target: Optional[str] = typer.Argument(None, help="embedder: a checkpoint (model.pt), a run folder holding "
                                                      "model.pt, 'raw[:SIZE]', 'pca[:N]' or a model name"),
    data: Optional[Path] = typer.Option(None, "--data", help="labelled set: identity folder ROOT/<person>/<image> "
                                                             "or a pack file"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for the figures, tables, analysis.json, report.html"),
    snapshots: Optional[Path] = typer.Option(None, "--snapshots", help="a training run folder: draw the t-SNE "
                                                                       "sequence of its snapshots instead"),
    enroll: int = typer.Option(5, "--enroll", min=1, help="images enrolled per person for rank-1"),
    perplexity: float = typer.Option(150.0, "--perplexity", help="t-SNE perplexity (lowered when the set is small)"),
    iterations: int = typer.Option(5000, "--iterations", min=500, help="t-SNE iterations (the first 250 are "
                                                                       "early exaggeration, so 500 at least)"),
    max_per_person: Optional[int] = typer.Option(None, "--max-per-person", help="use the first M images of each "
                                                                                "person (sorted order)"),
    part: str = typer.Option("all", "--part", help="all | train | held-out: the images `iznet train` on this "
                                                   "folder or pack trains on, or the last 20% per person it "
                                                   "holds out"),
    pairs: int = typer.Option(20000, "--pairs", min=2, help="verification pairs at most: as many same-person "
                                                            "as different-person pairs"),
    fit_data: Optional[Path] = typer.Option(None, "--fit-data", help="where a baseline that learns (pca) is "
                                                                     "fitted (default: the analysed set itself)"),
    seed: int = typer.Option(0, "--seed", help="seed of t-SNE and of the pair draw"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="t-SNE threads (default: one per core; "
                                                                         "1 is faster when the cores are busy)"),
    device: Optional[str] = typer.Option(None, "--device", help="cpu | cuda (default: cuda when present)"),
    dpi: int = typer.Option(130, "--dpi", min=30, help="resolution of the PNG figures"),
) -> None:
    """Embed a labelled set and write the write-up's analysis: t-SNE, intra-person boxplots, medoid and
    centroid distance tables, per-person verdicts, rank-1 and verification accuracy, one report.html."""
    if snapshots is not None:
        if target is not None or data is not None:
            raise IznetError("--snapshots draws a run's saved snapshots: give it alone, without an embedder or --data")
        _analyze_snapshots(snapshots, out, perplexity, iterations, seed, threads, dpi)
        return
    if target is None or data is None:
        raise IznetError("give an embedder and --data (e.g. `iznet analyze runs/x/model.pt --data crops/ --out "
                         "analysis/`), or --snapshots RUN_DIR")

    import numpy as np

    from iznet.engine.data import group_split
    from iznet.eval import plots
    from iznet.eval.analysis import analyze_embeddings
    from iznet.eval.analysis_data import load_labelled_set, resolve_target
    from iznet.eval.report import fmt, pct, write_analysis
    from iznet.recognize.embedder import load_embedder

    command = _command([("--data", data), ("--out", out), ("--enroll", enroll), ("--perplexity", perplexity),
                        ("--iterations", iterations), ("--max-per-person", max_per_person),
                        ("--part", part if part != "all" else None), ("--pairs", pairs),
                        ("--fit-data", fit_data), ("--seed", seed), ("--threads", threads),
                        ("--dpi", dpi if dpi != 130 else None)], [target])
    embedder = load_embedder(resolve_target(target), device=device)
    ds = load_labelled_set(data, max_per_person, part, split=group_split)
    out.mkdir(parents=True, exist_ok=True)
    typer.echo(f"{ds['source']}: {len(ds['labels'])} images of {len(ds['classes'])} people", err=True)
    if ds["skipped"]:
        typer.echo(ds["skipped"], err=True)
    warnings: list[str] = []
    if not embedder.trained:
        warnings.append(f"{embedder.name} has random weights: these numbers describe an untrained network.")
    if embedder.needs_fit:
        if fit_data is not None:
            fit = load_labelled_set(fit_data, None)
            embedder = embedder.fit(fit["images"], fit["labels"])
            fit_note = f"fitted on {fit['source']} ({len(fit['labels'])} images)"
        else:
            embedder = embedder.fit(ds["images"], ds["labels"])
            fit_note = "fitted on the analysed images themselves (unsupervised, but the same images are then scored)"
        warnings.append(f"{embedder.name} {fit_note}.")
    for w in warnings:
        typer.echo(f"note: {w}", err=True)

    t0 = time.perf_counter()
    emb = embedder.embed(ds["images"])
    embed_s = time.perf_counter() - t0
    labels, classes = ds["labels"], ds["classes"]
    result = analyze_embeddings(emb, labels, classes, enroll=enroll, max_pairs=pairs, seed=seed)
    names = np.asarray([classes[y] for y in labels])

    typer.echo(f"t-SNE of {len(labels)} points ({iterations} iterations, perplexity {perplexity:g}); "
               "this can take minutes on a CPU", err=True)
    t0 = time.perf_counter()
    proj = plots.tsne_project(emb, perplexity, iterations, seed=seed, threads=threads)
    tsne_s = time.perf_counter() - t0
    if proj.lowered:
        warnings.append(f"t-SNE perplexity lowered from {perplexity:g} to {proj.perplexity:.3g}: only "
                        f"{len(labels)} points (scikit-learn needs perplexity < points).")

    info = {"command": command, "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "embedder": embedder.describe(), "data": ds["source"], "skipped": ds["skipped"],
            "tsne": proj.to_dict(), "tsne_note": proj.note(), "warnings": warnings,
            "seconds": {"embed": embed_s, "tsne": tsne_s}}
    write_analysis(out, result, emb, labels, names, ds["paths"], proj, info, title=embedder.name, dpi=dpi)

    s = result.summary()
    typer.echo(f"{s['separated']} of {s['people']} people separated; mean intra distance {fmt(s['mean_intra'])}, "
               f"min medoid distance {fmt(s['min_inter_medoid'])}")
    if result.identification:
        r1 = result.identification["rank1"]
        typer.echo(f"rank-1 (enrol {enroll}): medoid {pct(r1['medoid'])}, centroid {pct(r1['centroid'])}, "
                   f"nearest image {pct(r1['nn'])}")
    if result.verification:
        v = result.verification
        typer.echo(f"verification: AUC {v['auc']:.4f}, {v['folds']}-fold accuracy {pct(v['accuracy'])}")
    for n in result.notes:
        typer.echo(f"note: {n}", err=True)
    typer.echo(f"wrote {out / 'report.html'}")


def _analyze_snapshots(run_dir: Path, out: Path, perplexity: float, iterations: int, seed: int,
                       threads: Optional[int], dpi: int) -> None:
    """``iznet analyze --snapshots``: the t-SNE sequence of a run's snapshots, one line per snapshot."""
    from iznet.eval.report import fmt
    from iznet.eval.snapshots import load_snapshots, write_snapshot_sequence

    frames, rows = load_snapshots(run_dir)
    typer.echo(f"t-SNE of {len(frames)} snapshots ({iterations} iterations each); this can take minutes", err=True)
    command = shlex.join(["iznet", "analyze", "--snapshots", str(run_dir), "--out", str(out), "--perplexity",
                          f"{perplexity:g}", "--iterations", str(iterations), "--seed", str(seed),
                          *(["--threads", str(threads)] if threads else [])])
    figure = write_snapshot_sequence(run_dir, out, frames, rows, perplexity=perplexity, iterations=iterations,
                                     seed=seed, threads=threads, dpi=dpi, command=command)
    for row in rows:
        typer.echo(f"{row['samples']:>12,} samples: {row['separated']}/{row['people']} separated, mean intra "
                   f"{fmt(row['mean_intra'])}, min medoid distance {fmt(row['min_inter_medoid'])}")
    typer.echo(f"wrote {figure}")


# ------------------------------------------------------------------------------------ report


@app.command("report")
def report(
    runs: list[Path] = typer.Argument(..., help="training run folders (each with summary.json)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="report.md or report.html (default: Markdown "
                                                                 "on standard output)"),
) -> None:
    """One table comparing training runs: model, loss, mining, samples, dev/test accuracy, and rank-1 and
    distances when a run folder holds an analysis.json from `iznet analyze`."""
    from iznet.eval.analysis import summarize_run
    from iznet.eval.report import runs_html, runs_markdown
    from iznet.utils.io import atomic_path

    rows = [summarize_run(r) for r in runs]
    command = shlex.join(["iznet", "report", *map(str, runs), *(["--out", str(out)] if out else [])])
    if out is None:
        typer.echo(runs_markdown(rows, Path.cwd()), nl=False)
        return
    suffix = out.suffix.lower()
    if suffix not in (".md", ".html", ".htm"):
        raise IznetError(f"--out {out}: give a .md or .html file")
    base = out.resolve().parent
    text = runs_html(rows, base, command) if suffix != ".md" else (
        f"# Training runs\n\n`{command}`\n\n" + runs_markdown(rows, base))
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    typer.echo(f"wrote {out} ({len(rows)} runs)")
