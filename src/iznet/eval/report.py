"""The files ``iznet analyze`` and ``iznet report`` write: CSV tables, one HTML report, a runs table.

* :func:`write_analysis` writes an analysis folder: the figures of :mod:`iznet.eval.plots`, the medoid and
  centroid distance tables as CSV (:func:`write_csv`), the embeddings, ``analysis.json`` and one
  self-contained ``report.html`` (:func:`analysis_report_html`, figures inlined as PNG data URIs);
* :func:`runs_markdown` and :func:`runs_html` format the rows of :func:`iznet.eval.analysis.summarize_run`
  as one table comparing training runs.

Heavy libraries (numpy, matplotlib) are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any, Optional, Sequence


# ------------------------------------------------------------------------------------ values
def fmt(v: Any, spec: str = ".3f") -> str:
    """A value for a table or a message: ``–`` for None, floats with ``spec``, anything else as ``str``."""
    if v is None:
        return "–"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def pct(v: Any) -> str:
    """A share (0..1) as a percentage with one decimal, ``–`` for None."""
    return "–" if v is None else f"{100.0 * float(v):.1f}%"


def write_csv(path: Path, table, names: Sequence[str]) -> None:
    """Write a (P, P) distance table as CSV (atomically): a header ``person,<names>``, then one row a person.

    Args:
        path: the CSV file.
        table: (P, P) distances.
        names: P person names, in the table's order.
    """
    import csv

    from iznet.utils.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["person", *names])
        for name, row in zip(names, table):
            w.writerow([name, *(f"{float(x):.6f}" for x in row)])


# ------------------------------------------------------------------------------------ analysis report
def _img_tag(path: Path, alt: str) -> str:
    """A figure with the PNG at ``path`` inlined as a data URI, captioned with ``alt``."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>' \
           f"{html.escape(alt)}</figcaption></figure>"


def distance_table_html(table, names: Sequence[str], whiskers: Sequence[Optional[float]]) -> str:
    """Distance table; a cell within the row person's whisker (an overlap) is shaded, the row minimum bold.

    Args:
        table: (P, P) distances.
        names: P person names.
        whiskers: each person's upper whisker of intra distances (None: no whisker, nothing shaded).

    Returns:
        one HTML ``<table class="dist">``.
    """
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


REPORT_CSS = """
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
"""The style sheet of both HTML reports."""


def analysis_report_html(result, info: dict[str, Any], files: dict[str, Path]) -> str:
    """The self-contained HTML report of one analysis.

    Args:
        result: an :class:`iznet.eval.analysis.AnalysisResult`.
        info: ``embedder`` (a dict with ``name``), ``data`` (the source), ``date``, ``command``,
            ``tsne_note`` and optionally ``warnings`` (list of str).
        files: the PNG figures ``tsne``, ``boxplot``, ``medoid_png``, ``centroid_png`` and, when drawn,
            ``roc`` (read and inlined), and the CSV tables ``medoid_csv`` and ``centroid_csv`` (linked by
            file name, so they belong next to the report).

    Returns:
        the HTML page.
    """
    r = result
    s = r.summary()
    ident, ver = r.identification, r.verification
    whiskers = [None if b is None else b.whisker_high for b in r.intra]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>iznet analysis: "
             f"{html.escape(info['embedder']['name'])}</title><style>{REPORT_CSS}</style></head><body>",
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
            parts.append(f"<tr><td>rank-1, {label}</td><td>{pct(ident['rank1'].get(kind))}</td><td>{how}</td></tr>")
    if ver:
        how = html.escape(ver["pairs"])
        parts.append(f"<tr><td>verification AUC</td><td>{ver['auc']:.4f}</td><td>{how}</td></tr>")
        parts.append(f"<tr><td>verification accuracy</td><td>{pct(ver['accuracy'])} ± {100 * ver['accuracy_std']:.1f}"
                     f"</td><td>{ver['folds']}-fold: threshold chosen on the other folds</td></tr>")
        parts.append(f"<tr><td>equal error rate</td><td>{pct(ver['eer'])}</td><td>all pairs</td></tr>")
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
                 + distance_table_html(r.medoid_table, r.names, whiskers))
    parts.append("<h2>Distances between centroids</h2>" + _img_tag(files["centroid_png"], "Centroid distance table")
                 + f"<p>CSV: <a href='{files['centroid_csv'].name}'>{files['centroid_csv'].name}</a></p>"
                 + distance_table_html(r.centroid_table, r.names, whiskers))
    if "roc" in files:
        parts.append("<h2>Verification ROC</h2>" + _img_tag(files["roc"], "ROC of pairs drawn from the analysed set"))
    parts.append("<p>All numbers: <a href='analysis.json'>analysis.json</a>.</p></body></html>")
    return "\n".join(parts)


def write_analysis(out: Path, result, embeddings, labels, names, paths: Sequence[str], projection,
                   info: dict[str, Any], title: str, dpi: int = 130) -> dict[str, Path]:
    """Write the files of one analysis into the existing folder ``out``.

    The figures (t-SNE, intra-person boxplot, medoid and centroid distance tables, and the verification ROC
    when ``result`` holds pairs), the two distance tables as CSV, ``embeddings.npz``, ``analysis.json``
    (``result`` with ``info`` as its ``extra``) and ``report.html`` (:func:`analysis_report_html`).

    Args:
        out: the analysis folder.
        result: the :class:`iznet.eval.analysis.AnalysisResult` of the embeddings; its ``extra`` becomes
            ``info``.
        embeddings: (N, D) embeddings.
        labels: (N,) integer labels.
        names: (N,) person name of each row.
        paths: N image paths, stored with the embeddings.
        projection: the :class:`iznet.eval.plots.TsneProjection` of the embeddings.
        info: what :func:`analysis_report_html` reads, stored in ``analysis.json``.
        title: the embedder's name, in every figure title.
        dpi: resolution of the PNG figures.

    Returns:
        the written figures and tables by key (see :func:`analysis_report_html`).
    """
    import numpy as np

    from iznet.eval import plots
    from iznet.utils.io import atomic_path, write_json

    emb = embeddings
    files = {"tsne": out / "tsne.png", "boxplot": out / "boxplot.png", "medoid_png": out / "medoid_distances.png",
             "medoid_csv": out / "medoid_distances.csv", "centroid_png": out / "centroid_distances.png",
             "centroid_csv": out / "centroid_distances.csv"}
    plots.save_figure(plots.tsne_figure(emb, names, projection=projection, title=f"t-SNE: {title}"), files["tsne"],
                      dpi=dpi)
    plots.save_figure(plots.intra_distance_boxplot(emb, names, title=f"Distances within each person: {title}",
                                                   nearest_medoid=[v.nearest_distance for v in result.verdicts]
                                                   if len(result.names) > 1 else None), files["boxplot"], dpi=dpi)
    plots.save_figure(plots.distance_heatmap(result.medoid_table, result.names, f"Distances between medoids: {title}"),
                      files["medoid_png"], dpi=dpi)
    plots.save_figure(plots.distance_heatmap(result.centroid_table, result.names,
                                             f"Distances between centroids: {title}"), files["centroid_png"], dpi=dpi)
    write_csv(files["medoid_csv"], result.medoid_table, result.names)
    write_csv(files["centroid_csv"], result.centroid_table, result.names)
    if result.pair_dist is not None:
        files["roc"] = out / "roc.png"
        plots.save_figure(plots.roc_figure(result.pair_dist, result.pair_same, title=f"Verification ROC: {title}"),
                          files["roc"], dpi=dpi)
    np.savez_compressed(out / "embeddings.npz", embeddings=emb, labels=labels, names=names,
                        paths=np.asarray(paths))

    result.extra = info
    write_json(out / "analysis.json", result.to_dict())
    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(analysis_report_html(result, info, files))
    return files


# ------------------------------------------------------------------------------------ runs table
RUN_COLUMNS = [("run", "run"), ("model", "model"), ("input_size", "input"), ("loss", "loss"), ("mining", "mining"),
               ("samples", "samples seen"), ("dev_acc", "dev acc"), ("dev_auc", "dev AUC"), ("test_acc", "test acc"),
               ("test_auc", "test AUC"), ("rank1_medoid", "rank-1 medoid"), ("rank1_nn", "rank-1 NN"),
               ("mean_intra", "mean intra"), ("min_inter", "min inter (medoids)"), ("separated", "separated"),
               ("report", "report")]
"""The columns of the runs table: (key, heading)."""


def run_cells(row: dict[str, Any], link_base: Optional[Path]) -> dict[str, tuple[str, Optional[str]]]:
    """The cells of one run's row.

    Args:
        row: a row of :func:`iznet.eval.analysis.summarize_run`.
        link_base: the folder the report link is made relative to (None: the path as stored).

    Returns:
        column key -> (text, link or None).
    """
    r1 = row.get("rank1") or {}
    sep = None if row.get("separated") is None else f"{row['separated']}/{row['people']}"
    link = None
    if row.get("report"):
        link = os.path.relpath(row["report"], link_base) if link_base is not None else row["report"]
    samples = row.get("samples")
    return {"run": (row["run"], None), "model": (fmt(row.get("model")), None),
            "input_size": ("–" if row.get("input_size") is None else f"{row['input_size']} px", None),
            "loss": (fmt(row.get("loss")), None),
            "mining": (fmt(row.get("mining")), None),
            "samples": ("–" if samples is None else f"{int(samples):,}", None),
            "dev_acc": (pct(row.get("dev_acc")), None), "dev_auc": (fmt(row.get("dev_auc"), ".4f"), None),
            "test_acc": (pct(row.get("test_acc")), None), "test_auc": (fmt(row.get("test_auc"), ".4f"), None),
            "rank1_medoid": (pct(r1.get("medoid")), None), "rank1_nn": (pct(r1.get("nn")), None),
            "mean_intra": (fmt(row.get("mean_intra")), None), "min_inter": (fmt(row.get("min_inter")), None),
            "separated": ("–" if sep is None else sep, None),
            "report": ("report" if link else "–", link)}


def runs_markdown(rows: Sequence[dict[str, Any]], link_base: Optional[Path]) -> str:
    """The runs table as Markdown, one line a run, the analysis report linked when there is one.

    Args:
        rows: rows of :func:`iznet.eval.analysis.summarize_run`.
        link_base: the folder report links are made relative to (None: the paths as stored).

    Returns:
        the table, ending with a newline.
    """
    head = "| " + " | ".join(h for _, h in RUN_COLUMNS) + " |"
    lines = [head, "|" + "---|" * len(RUN_COLUMNS)]
    for row in rows:
        c = run_cells(row, link_base)
        lines.append("| " + " | ".join(f"[{t}]({u})" if u else t.replace("|", "\\|")
                                       for t, u in (c[k] for k, _ in RUN_COLUMNS)) + " |")
    return "\n".join(lines) + "\n"


def runs_html(rows: Sequence[dict[str, Any]], link_base: Optional[Path], command: str) -> str:
    """The runs table as one HTML page.

    Args:
        rows: rows of :func:`iznet.eval.analysis.summarize_run`.
        link_base: the folder report links are made relative to (None: the paths as stored).
        command: the command line that made the page, shown above the table.

    Returns:
        the HTML page, ending with a newline.
    """
    body = ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for _, h in RUN_COLUMNS) + "</tr>"]
    for row in rows:
        c = run_cells(row, link_base)
        tds = []
        for k, _ in RUN_COLUMNS:
            t, u = c[k]
            cell = f"<a href='{html.escape(u)}'>{html.escape(t)}</a>" if u else html.escape(t)
            tds.append(f"<td>{cell}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>iznet runs</title><style>{REPORT_CSS}</style>"
            f"</head><body><h1>Training runs</h1><pre>{html.escape(command)}</pre><table>{''.join(body)}</table>"
            "<p>dev/test acc: verification accuracy from the run's summary.json (test at the dev threshold). "
            "rank-1, mean intra and min inter distance: from the run's analysis.json (`iznet analyze`).</p>"
            "</body></html>\n")
