"""``iznet analyze`` (t-SNE, boxplots, medoid tables, accuracy, one HTML report) and ``iznet report``
(one table comparing training runs).

The numbers come from :mod:`iznet.eval.analysis`, the figures from :mod:`iznet.eval.plots`; this module
loads the labelled images, embeds them, writes the files and formats the report.
"""

from __future__ import annotations

import base64
import datetime
import html
import logging
import os
import shlex
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import typer

from iznet.cli.app import app
from iznet.errors import DataError, IznetError, ModelError

_logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------ loading data
def _resolve_folder(root: Path) -> Path:
    """``root``, or ``root/images`` when ``root`` only wraps the person folders (e.g. ``glint24/``)."""
    subdirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(subdirs) == 1 and subdirs[0].name == "images" and any(p.is_dir() for p in subdirs[0].iterdir()):
        return subdirs[0]
    return root


def _first_per_person(labels, limit: Optional[int]):
    """Indices of the first ``limit`` items of each label, in input order (all when limit is None)."""
    import numpy as np

    labels = np.asarray(labels)
    if limit is None:
        return np.arange(labels.size)
    seen: dict[int, int] = {}
    keep = []
    for i, y in enumerate(labels.tolist()):
        if seen.get(y, 0) < limit:
            keep.append(i)
        seen[y] = seen.get(y, 0) + 1
    return np.asarray(keep, dtype=np.int64)


PARTS = ("all", "train", "held-out")


def _part_indices(labels, part: str):
    """Indices of ``part`` of a labelled set under the split ``iznet train`` uses for a group."""
    import numpy as np

    if part == "all":
        return np.arange(len(labels))
    from iznet.engine.data import group_split

    train_idx, held_idx = group_split(np.asarray(labels))
    return train_idx if part == "train" else held_idx


def _part_note(part: str) -> str:
    return "" if part == "all" else f" ({part} part: the last 20% of each person's images are held out)"


def _load_labelled_set(data: Path, max_per_person: Optional[int], part: str = "all") -> dict[str, Any]:
    """Images (N, 3, S, S) uint8, labels (N,), classes and paths of a folder or a pack.

    A folder's images are read in sorted order; unreadable files are skipped and reported. Images of
    different sizes are brought to the most common side with a centre square crop and a resize.
    ``part`` keeps the training or the held-out images of the split ``iznet train`` makes of a group
    (decided on the set's order, before unreadable files are dropped, as training does).
    """
    import numpy as np
    import torch

    if part not in PARTS:
        raise DataError(f"--part {part!r}: choose one of {', '.join(PARTS)}")
    if max_per_person is not None and max_per_person < 2:
        raise DataError(f"--max-per-person {max_per_person}: keep at least 2 images per person")
    if not data.exists():
        raise DataError(f"--data {data} does not exist; give an identity folder (ROOT/<person>/<image>) "
                        "or a pack file from `iznet pack`")
    if data.is_file():
        from iznet.data.pack import load_pack

        pack = load_pack(data)
        labels = pack.labels.numpy()
        part_idx = _part_indices(labels, part)
        idx = part_idx[_first_per_person(labels[part_idx], max_per_person)]
        if idx.size == 0:
            raise DataError(f"pack {data} holds no images")
        images = pack.decode(idx)
        return {"images": images, "labels": labels[idx], "classes": list(pack.classes),
                "paths": [pack.paths[i] for i in idx], "source": f"pack {data}" + _part_note(part), "skipped": ""}

    from iznet.data.datasets import IdentityFolder
    from iznet.data.images import load_images
    from iznet.data.pack import fit_square

    root = _resolve_folder(data)
    folder = IdentityFolder(root)
    part_idx = _part_indices(folder.labels, part)
    idx = part_idx[_first_per_person(folder.labels[part_idx], max_per_person)]
    loaded, report = load_images([folder.paths[i] for i in idx])
    if not loaded:
        raise DataError(f"no readable image in {root}: {report.summary()}")
    ok = {str(p) for p, _ in loaded}
    idx = np.asarray([i for i in idx if str(folder.paths[i]) in ok], dtype=np.int64)
    arrays = [a for _, a in loaded]
    sides = [min(a.shape[:2]) for a in arrays]
    side = max(set(sides), key=sides.count)
    if any(a.shape[0] != side or a.shape[1] != side for a in arrays):
        _logger.info("bringing %d images to %dx%d (centre square, resize)", len(arrays), side, side)
        arrays = [fit_square(a, side) for a in arrays]
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    labels = folder.labels[idx]
    present = sorted(set(labels.tolist()))
    classes = [folder.classes[i] for i in present]  # a person whose images were all unreadable is dropped
    remap = {old: new for new, old in enumerate(present)}
    labels = np.asarray([remap[y] for y in labels.tolist()], dtype=np.int64)
    return {"images": images, "labels": labels, "classes": classes,
            "paths": [folder.relpaths()[i] for i in idx], "source": f"folder {root}" + _part_note(part),
            "skipped": report.summary() if report.count else ""}


def _resolve_target(target: str) -> str:
    """A run folder stands for its ``model.pt``."""
    p = Path(target)
    if p.is_dir():
        ck = p / "model.pt"
        if not ck.is_file():
            raise ModelError(f"{p} is a folder without model.pt; give an embedder checkpoint, a run folder of "
                             "a finished `iznet train`, 'raw' or 'pca'")
        return str(ck)
    return target


# ------------------------------------------------------------------------------------ formatting
def _fmt(v: Any, spec: str = ".3f") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def _pct(v: Any) -> str:
    return "–" if v is None else f"{100.0 * float(v):.1f}%"


def _write_csv(path: Path, table, names: Sequence[str]) -> None:
    import csv

    from iznet.utils.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["person", *names])
        for name, row in zip(names, table):
            w.writerow([name, *(f"{float(x):.6f}" for x in row)])


def _img_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>' \
           f"{html.escape(alt)}</figcaption></figure>"


def _table_html(table, names: Sequence[str], whiskers: Sequence[Optional[float]]) -> str:
    """Distance table; a cell within the row person's whisker (an overlap) is shaded, the row minimum bold."""
    import numpy as np

    t = np.asarray(table)
    esc = [html.escape(str(n)) for n in names]
    rows = ["<tr><th></th>" + "".join(f"<th>{n}</th>" for n in esc) + "</tr>"]
    for i, n in enumerate(esc):
        others = [j for j in range(len(names)) if j != i]
        jmin = min(others, key=lambda j: t[i, j]) if others else None
        cells = []
        for j in range(len(names)):
            cls = []
            if i == j:
                cls.append("diag")
            elif whiskers[i] is not None and t[i, j] <= whiskers[i]:
                cls.append("overlap")
            if j == jmin:
                cls.append("min")
            attr = f' class="{" ".join(cls)}"' if cls else ""
            cells.append(f"<td{attr}>{t[i, j]:.2f}</td>")
        rows.append(f"<tr><th>{n}</th>{''.join(cells)}</tr>")
    return '<table class="dist">' + "".join(rows) + "</table>"


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}
pre{background:#f4f4f4;padding:.6em;overflow-x:auto}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;font-size:13px}
th{background:#f0f0f0}
table.dist td,table.dist th{font-size:11px;padding:1px 4px}
td.diag{background:#ddd;color:#999}
td.overlap{background:#f7c6c6}
td.min{font-weight:bold}
.warn{background:#fff3cd;border:1px solid #e0c060;padding:.5em;margin:.5em 0}
figure{margin:1em 0}
figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:13px;color:#555}
li.sep{color:#176117}
li.ovl{color:#9b1c1c}
"""


def _report_html(result, info: dict[str, Any], files: dict[str, Path]) -> str:
    r = result
    s = r.summary()
    ident, ver = r.identification, r.verification
    whiskers = [None if b is None else b.whisker_high for b in r.intra]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>iznet analysis: "
             f"{html.escape(info['embedder']['name'])}</title><style>{_CSS}</style></head><body>",
             f"<h1>Analysis of {html.escape(info['embedder']['name'])}</h1>",
             f"<p>{s['images']} images of {s['people']} people from {html.escape(info['data'])}; "
             f"written {html.escape(info['date'])}.</p>",
             f"<pre>{html.escape(info['command'])}</pre>"]
    for w in info.get("warnings", []):
        parts.append(f'<div class="warn">{html.escape(w)}</div>')

    parts.append("<h2>Accuracy</h2><table><tr><th>measure</th><th>value</th><th>how</th></tr>")
    if ident:
        how = (f"first {ident['k']} images of each person enrolled, {ident['n_probes']} probes; "
               "nearest prototype by Euclidean distance")
        for kind in ("medoid", "centroid", "nn"):
            label = {"nn": "nearest enrolled image"}.get(kind, kind)
            parts.append(f"<tr><td>rank-1, {label}</td><td>{_pct(ident['rank1'].get(kind))}</td><td>{how}</td></tr>")
    if ver:
        how = html.escape(ver["pairs"])
        parts.append(f"<tr><td>verification AUC</td><td>{ver['auc']:.4f}</td><td>{how}</td></tr>")
        parts.append(f"<tr><td>verification accuracy</td><td>{_pct(ver['accuracy'])} ± {100 * ver['accuracy_std']:.1f}"
                     f"</td><td>{ver['folds']}-fold: threshold chosen on the other folds</td></tr>")
        parts.append(f"<tr><td>equal error rate</td><td>{_pct(ver['eer'])}</td><td>all pairs</td></tr>")
    parts.append("</table>")
    for n in r.notes:
        parts.append(f'<div class="warn">{html.escape(n)}</div>')

    parts.append(f"<h2>Verdicts: {r.n_separated} of {len(r.names)} people separated</h2>"
                 "<p>A person is <i>separated</i> when every other person's medoid lies farther from theirs than "
                 "the upper whisker of their own boxplot of intra-person distances.</p><ul>")
    for v in r.verdicts:
        parts.append(f'<li class="{"sep" if v.separated else "ovl"}">{html.escape(v.line())}</li>')
    parts.append("</ul>")

    parts.append("<h2>t-SNE</h2>" + _img_tag(files["tsne"], f"t-SNE: {info['tsne_note']}"))
    parts.append("<h2>Distances within each person</h2>"
                 + _img_tag(files["boxplot"], "One box per person; red: distance from the person's medoid to the "
                                              "nearest other medoid (above the whisker = separated)"))
    parts.append("<table><tr><th>person</th><th>images</th><th>median</th><th>Q3</th><th>upper whisker</th>"
                 "<th>max</th><th>nearest other medoid</th><th>verdict</th></tr>")
    for b, v in zip(r.intra, r.verdicts):
        near = "–" if v.nearest is None else f"{html.escape(v.nearest)} {v.nearest_distance:.2f}"
        cells = ["–"] * 4 if b is None else [f"{x:.3f}" for x in (b.median, b.q3, b.whisker_high, b.max)]
        parts.append(f"<tr><th>{html.escape(v.name)}</th><td>{v.n_images}</td>"
                     + "".join(f"<td>{c}</td>" for c in cells)
                     + f"<td>{near}</td><td>{html.escape(v.verdict)}</td></tr>")
    parts.append("</table>")
    parts.append("<h2>Distances between medoids</h2>" + _img_tag(files["medoid_png"], "Medoid distance table")
                 + "<p>Shaded: within the row person's upper whisker (overlap). Bold: the row's nearest person. "
                   f"CSV: <a href='{files['medoid_csv'].name}'>{files['medoid_csv'].name}</a></p>"
                 + _table_html(r.medoid_table, r.names, whiskers))
    parts.append("<h2>Distances between centroids</h2>" + _img_tag(files["centroid_png"], "Centroid distance table")
                 + f"<p>CSV: <a href='{files['centroid_csv'].name}'>{files['centroid_csv'].name}</a></p>"
                 + _table_html(r.centroid_table, r.names, whiskers))
    if "roc" in files:
        parts.append("<h2>Verification ROC</h2>" + _img_tag(files["roc"], "ROC of pairs drawn from the analysed set"))
    parts.append(f"<p>All numbers: <a href='analysis.json'>analysis.json</a>.</p></body></html>")
    return "\n".join(parts)


def _command(parts: Sequence[tuple[str, Any]], positional: Sequence[str]) -> str:
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

    from iznet.eval.analysis import analyze_embeddings
    from iznet.recognize.embedder import load_embedder
    from iznet.utils.io import atomic_path, write_json
    from iznet.eval import plots

    command = _command([("--data", data), ("--out", out), ("--enroll", enroll), ("--perplexity", perplexity),
                        ("--iterations", iterations), ("--max-per-person", max_per_person),
                        ("--part", part if part != "all" else None), ("--pairs", pairs),
                        ("--fit-data", fit_data), ("--seed", seed), ("--threads", threads),
                        ("--dpi", dpi if dpi != 130 else None)], [target])
    embedder = load_embedder(_resolve_target(target), device=device)
    ds = _load_labelled_set(data, max_per_person, part)
    out.mkdir(parents=True, exist_ok=True)
    typer.echo(f"{ds['source']}: {len(ds['labels'])} images of {len(ds['classes'])} people", err=True)
    if ds["skipped"]:
        typer.echo(ds["skipped"], err=True)
    warnings: list[str] = []
    if not embedder.trained:
        warnings.append(f"{embedder.name} has random weights: these numbers describe an untrained network.")
    if embedder.needs_fit:
        if fit_data is not None:
            fit = _load_labelled_set(fit_data, None)
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

    files = {"tsne": out / "tsne.png", "boxplot": out / "boxplot.png", "medoid_png": out / "medoid_distances.png",
             "medoid_csv": out / "medoid_distances.csv", "centroid_png": out / "centroid_distances.png",
             "centroid_csv": out / "centroid_distances.csv"}
    title = embedder.name
    plots.save_figure(plots.tsne_figure(emb, names, projection=proj, title=f"t-SNE: {title}"), files["tsne"],
                      dpi=dpi)
    plots.save_figure(plots.intra_distance_boxplot(emb, names, title=f"Distances within each person: {title}",
                                                   nearest_medoid=[v.nearest_distance for v in result.verdicts]
                                                   if len(classes) > 1 else None), files["boxplot"], dpi=dpi)
    plots.save_figure(plots.distance_heatmap(result.medoid_table, result.names, f"Distances between medoids: {title}"),
                      files["medoid_png"], dpi=dpi)
    plots.save_figure(plots.distance_heatmap(result.centroid_table, result.names,
                                             f"Distances between centroids: {title}"), files["centroid_png"], dpi=dpi)
    _write_csv(files["medoid_csv"], result.medoid_table, result.names)
    _write_csv(files["centroid_csv"], result.centroid_table, result.names)
    if result.pair_dist is not None:
        files["roc"] = out / "roc.png"
        plots.save_figure(plots.roc_figure(result.pair_dist, result.pair_same, title=f"Verification ROC: {title}"),
                          files["roc"], dpi=dpi)
    np.savez_compressed(out / "embeddings.npz", embeddings=emb, labels=labels, names=names,
                        paths=np.asarray(ds["paths"]))

    info = {"command": command, "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "embedder": embedder.describe(), "data": ds["source"], "skipped": ds["skipped"],
            "tsne": proj.to_dict(), "tsne_note": proj.note(), "warnings": warnings,
            "seconds": {"embed": embed_s, "tsne": tsne_s}}
    result.extra = info
    write_json(out / "analysis.json", result.to_dict())
    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(_report_html(result, info, files))

    s = result.summary()
    typer.echo(f"{s['separated']} of {s['people']} people separated; mean intra distance {_fmt(s['mean_intra'])}, "
               f"min medoid distance {_fmt(s['min_inter_medoid'])}")
    if result.identification:
        r1 = result.identification["rank1"]
        typer.echo(f"rank-1 (enrol {enroll}): medoid {_pct(r1['medoid'])}, centroid {_pct(r1['centroid'])}, "
                   f"nearest image {_pct(r1['nn'])}")
    if result.verification:
        v = result.verification
        typer.echo(f"verification: AUC {v['auc']:.4f}, {v['folds']}-fold accuracy {_pct(v['accuracy'])}")
    for n in result.notes:
        typer.echo(f"note: {n}", err=True)
    typer.echo(f"wrote {out / 'report.html'}")


def _analyze_snapshots(run_dir: Path, out: Path, perplexity: float, iterations: int, seed: int,
                       threads: Optional[int], dpi: int) -> None:
    import numpy as np

    from iznet.eval.analysis import analyze_embeddings, labels_from_names
    from iznet.utils.io import write_json
    from iznet.eval import plots

    if not run_dir.is_dir():
        raise IznetError(f"run folder {run_dir} does not exist")
    paths = sorted((run_dir / "snapshots").glob("samples_*.npz"))
    if not paths:
        raise IznetError(f"{run_dir} holds no snapshots/samples_*.npz; train with `iznet train --snapshot-at "
                         "0,5000,...` to record them")
    frames, rows = [], []
    for p in paths:
        try:
            with np.load(p, allow_pickle=False) as z:
                emb, names, samples = z["embeddings"], z["names"].astype(str), int(z["samples"])
        except (OSError, KeyError, ValueError) as e:
            raise IznetError(f"{p} is not a training snapshot ({e})") from None
        frames.append((f"{samples:,} samples", emb, names))
        lab, classes = labels_from_names(names)
        summ = analyze_embeddings(emb, lab, classes, with_accuracy=False).summary()
        rows.append({"file": p.name, "samples": samples, **{k: summ[k] for k in
                                                            ("people", "images", "mean_intra", "min_inter_medoid",
                                                             "separated")}})
    typer.echo(f"t-SNE of {len(frames)} snapshots ({iterations} iterations each); this can take minutes", err=True)
    projs = [plots.tsne_project(e, perplexity, iterations, seed=seed, threads=threads) for _, e, _ in frames]
    out.mkdir(parents=True, exist_ok=True)
    fig = plots.tsne_sequence_figure(frames, projections=projs, title=f"t-SNE during training: {run_dir.name}")
    plots.save_figure(fig, out / "tsne_sequence.png", dpi=dpi)
    command = shlex.join(["iznet", "analyze", "--snapshots", str(run_dir), "--out", str(out), "--perplexity",
                          f"{perplexity:g}", "--iterations", str(iterations), "--seed", str(seed),
                          *(["--threads", str(threads)] if threads else [])])
    for row, proj in zip(rows, projs):
        row["tsne"] = proj.to_dict()
    write_json(out / "snapshots.json", {"command": command, "run": str(run_dir), "frames": rows})
    for row in rows:
        typer.echo(f"{row['samples']:>12,} samples: {row['separated']}/{row['people']} separated, mean intra "
                   f"{_fmt(row['mean_intra'])}, min medoid distance {_fmt(row['min_inter_medoid'])}")
    typer.echo(f"wrote {out / 'tsne_sequence.png'}")


# ------------------------------------------------------------------------------------ report
_COLUMNS = [("run", "run"), ("model", "model"), ("input_size", "input"), ("loss", "loss"), ("mining", "mining"), ("samples", "samples seen"),
            ("dev_acc", "dev acc"), ("dev_auc", "dev AUC"), ("test_acc", "test acc"), ("test_auc", "test AUC"),
            ("rank1_medoid", "rank-1 medoid"), ("rank1_nn", "rank-1 NN"), ("mean_intra", "mean intra"),
            ("min_inter", "min inter (medoids)"), ("separated", "separated"), ("report", "report")]


def _cells(row: dict[str, Any], link_base: Optional[Path]) -> dict[str, tuple[str, Optional[str]]]:
    """Column -> (text, link or None)."""
    r1 = row.get("rank1") or {}
    sep = None if row.get("separated") is None else f"{row['separated']}/{row['people']}"
    link = None
    if row.get("report"):
        link = os.path.relpath(row["report"], link_base) if link_base is not None else row["report"]
    samples = row.get("samples")
    return {"run": (row["run"], None), "model": (_fmt(row.get("model")), None),
            "input_size": ("–" if row.get("input_size") is None else f"{row['input_size']} px", None), "loss": (_fmt(row.get("loss")), None),
            "mining": (_fmt(row.get("mining")), None),
            "samples": ("–" if samples is None else f"{int(samples):,}", None),
            "dev_acc": (_pct(row.get("dev_acc")), None), "dev_auc": (_fmt(row.get("dev_auc"), ".4f"), None),
            "test_acc": (_pct(row.get("test_acc")), None), "test_auc": (_fmt(row.get("test_auc"), ".4f"), None),
            "rank1_medoid": (_pct(r1.get("medoid")), None), "rank1_nn": (_pct(r1.get("nn")), None),
            "mean_intra": (_fmt(row.get("mean_intra")), None), "min_inter": (_fmt(row.get("min_inter")), None),
            "separated": ("–" if sep is None else sep, None),
            "report": ("report" if link else "–", link)}


def runs_markdown(rows: Sequence[dict[str, Any]], link_base: Optional[Path]) -> str:
    head = "| " + " | ".join(h for _, h in _COLUMNS) + " |"
    lines = [head, "|" + "---|" * len(_COLUMNS)]
    for row in rows:
        c = _cells(row, link_base)
        lines.append("| " + " | ".join(f"[{t}]({u})" if u else t.replace("|", "\\|")
                                       for t, u in (c[k] for k, _ in _COLUMNS)) + " |")
    return "\n".join(lines) + "\n"


def runs_html(rows: Sequence[dict[str, Any]], link_base: Optional[Path], command: str) -> str:
    body = ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for _, h in _COLUMNS) + "</tr>"]
    for row in rows:
        c = _cells(row, link_base)
        tds = []
        for k, _ in _COLUMNS:
            t, u = c[k]
            cell = f"<a href='{html.escape(u)}'>{html.escape(t)}</a>" if u else html.escape(t)
            tds.append(f"<td>{cell}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>iznet runs</title><style>{_CSS}</style>"
            f"</head><body><h1>Training runs</h1><pre>{html.escape(command)}</pre><table>{''.join(body)}</table>"
            "<p>dev/test acc: verification accuracy from the run's summary.json (test at the dev threshold). "
            "rank-1, mean intra and min inter distance: from the run's analysis.json (`iznet analyze`).</p>"
            "</body></html>\n")


@app.command("report")
def report(
    runs: list[Path] = typer.Argument(..., help="training run folders (each with summary.json)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="report.md or report.html (default: Markdown "
                                                                 "on standard output)"),
) -> None:
    """One table comparing training runs: model, loss, mining, samples, dev/test accuracy, and rank-1 and
    distances when a run folder holds an analysis.json from `iznet analyze`."""
    from iznet.eval.analysis import summarize_run
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
