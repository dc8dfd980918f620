"""The report builders of :mod:`iznet.eval.report` and the loaders of :mod:`iznet.eval.analysis_data`,
called directly on tiny synthetic inputs (no CLI, no shared data)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from iznet.errors import DataError, ModelError
from iznet.eval.analysis import analyze_embeddings
from iznet.eval.analysis_data import first_per_person, load_labelled_set, part_indices, resolve_target
from iznet.eval.report import (RUN_COLUMNS, analysis_report_html, distance_table_html, fmt, pct, runs_html,
                               runs_markdown, write_csv)


def _rows(tmp_path):
    report = tmp_path / "runs" / "a" / "analysis" / "report.html"
    a = {"run": "a", "model": "nn1", "input_size": 96, "loss": "triplet", "mining": "semi-hard", "samples": 12800,
         "dev_acc": 0.9, "dev_auc": 0.95, "test_acc": None, "test_auc": None, "rank1": {"medoid": 1.0, "nn": 0.5},
         "mean_intra": 0.25, "min_inter": 1.2, "separated": 3, "people": 3, "report": str(report)}
    b = {"run": "b|c", "model": None, "input_size": None, "loss": "pair", "mining": "uniform pairs", "samples": None,
         "dev_acc": 0.75, "dev_auc": 0.8, "test_acc": 0.7, "test_auc": 0.77, "rank1": None,
         "mean_intra": None, "min_inter": None, "separated": None, "people": None, "report": None}
    return [a, b]


def test_formatting_of_values():
    assert fmt(None) == "–" and fmt(0.12345) == "0.123" and fmt(0.12345, ".4f") == "0.1235" and fmt(7) == "7"
    assert pct(None) == "–" and pct(0.5) == "50.0%" and pct(1) == "100.0%"


def test_runs_markdown_one_line_a_run(tmp_path):
    text = runs_markdown(_rows(tmp_path), tmp_path)
    lines = text.splitlines()
    assert text.endswith("\n") and len(lines) == 4
    assert lines[0] == "| " + " | ".join(h for _, h in RUN_COLUMNS) + " |"
    assert lines[1] == "|" + "---|" * len(RUN_COLUMNS)
    assert lines[2] == ("| a | nn1 | 96 px | triplet | semi-hard | 12,800 | 90.0% | 0.9500 | – | – | 100.0% | 50.0% "
                        "| 0.250 | 1.200 | 3/3 | [report](runs/a/analysis/report.html) |")
    assert lines[3] == "| b\\|c | – | – | pair | uniform pairs | – | 75.0% | 0.8000 | 70.0% | 0.7700 | – | – | – | – | – | – |"


def test_runs_html_escapes_and_links(tmp_path):
    page = runs_html(_rows(tmp_path), tmp_path, "iznet report a 'b|c' --out <r>.html")
    assert page.startswith("<!doctype html>") and page.endswith("</body></html>\n")
    assert "<pre>iznet report a &#x27;b|c&#x27; --out &lt;r&gt;.html</pre>" in page
    assert page.count("<tr>") == 3 and "<td>b|c</td>" in page
    assert "<td><a href='runs/a/analysis/report.html'>report</a></td>" in page
    assert "<td>12,800</td>" in page and "<td>3/3</td>" in page


def test_write_csv(tmp_path):
    path = tmp_path / "t.csv"
    write_csv(path, np.array([[0.0, 1.25], [1.25, 0.0]]), ["ann", "bo,b"])
    assert path.read_text().splitlines() == ["person,ann,\"bo,b\"", "ann,0.000000,1.250000",
                                             "\"bo,b\",1.250000,0.000000"]


def test_distance_table_marks_overlap_and_row_minimum():
    table = np.array([[0.0, 0.5, 1.5], [0.5, 0.0, 1.0], [1.5, 1.0, 0.0]])
    html = distance_table_html(table, ["a", "b", "<c>"], [0.6, None, 0.2])
    assert "<th>&lt;c&gt;</th>" in html
    # row a: b lies within a's whisker (overlap) and is its nearest; row b has no whisker, nothing shaded
    assert '<tr><th>a</th><td class="diag">0.00</td><td class="overlap min">0.50</td><td>1.50</td></tr>' in html
    assert '<tr><th>b</th><td class="min">0.50</td><td class="diag">0.00</td><td>1.00</td></tr>' in html


def _png(path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)
    return path


def test_analysis_report_html_holds_the_tables(tmp_path):
    emb = np.eye(3, dtype=np.float32)[[0, 0, 0, 1, 1, 1, 2, 2, 2]]
    emb[[1, 4, 7]] += 0.1
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    result = analyze_embeddings(emb, [0, 0, 0, 1, 1, 1, 2, 2, 2], ["ann", "bo", "cy"], enroll=1)
    files = {k: _png(tmp_path / f"{k}.png") for k in ("tsne", "boxplot", "medoid_png", "centroid_png")}
    files.update(medoid_csv=tmp_path / "medoid_distances.csv", centroid_csv=tmp_path / "centroid_distances.csv")
    info = {"embedder": {"name": "raw<16>"}, "data": "folder faces", "date": "2024-01-02T03:04:05",
            "command": "iznet analyze raw:16 --data faces", "tsne_note": "perplexity 2", "warnings": ["a warning"]}
    page = analysis_report_html(result, info, files)
    assert "<title>iznet analysis: raw&lt;16&gt;</title>" in page and "<h1>Analysis of raw&lt;16&gt;</h1>" in page
    assert "<p>9 images of 3 people from folder faces; written 2024-01-02T03:04:05.</p>" in page
    assert '<div class="warn">a warning</div>' in page and "<pre>iznet analyze raw:16 --data faces</pre>" in page
    assert page.count("data:image/png;base64,") == 4  # no ROC figure given, none drawn
    assert "Verdicts: 3 of 3 people separated" in page and "<td>100.0%</td>" in page
    assert "<a href='medoid_distances.csv'>medoid_distances.csv</a>" in page
    assert page.count('<table class="dist">') == 2
    whiskers = [b.whisker_high for b in result.intra]
    assert distance_table_html(result.medoid_table, result.names, whiskers) in page
    assert distance_table_html(result.centroid_table, result.names, whiskers) in page
    assert f">{result.medoid_table[0, 1]:.2f}</td>" in page
    b = result.intra[0]
    assert "".join(f"<td>{x:.3f}</td>" for x in (b.median, b.q3, b.whisker_high, b.max)) in page


def test_first_per_person_and_parts():
    labels = np.array([1, 0, 1, 1, 0, 0, 0])
    assert first_per_person(labels, None).tolist() == list(range(7))
    assert first_per_person(labels, 2).tolist() == [0, 1, 2, 4]
    assert part_indices(labels, "all").tolist() == list(range(7))

    def split(y):
        return np.flatnonzero(y == 0), np.flatnonzero(y == 1)

    assert part_indices(labels, "train", split).tolist() == [1, 4, 5, 6]
    assert part_indices(labels, "held-out", split).tolist() == [0, 2, 3]
    with pytest.raises(ValueError):
        part_indices(labels, "train")


def test_load_labelled_set_and_its_errors(tmp_path):
    root = tmp_path / "faces"
    for p in ("ann", "bo"):
        (root / p).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(root / p / f"{i}.png")
    ds = load_labelled_set(root, 2)
    assert tuple(ds["images"].shape) == (4, 3, 8, 8) and ds["labels"].tolist() == [0, 0, 1, 1]
    assert ds["classes"] == ["ann", "bo"] and ds["source"] == f"folder {root}" and ds["skipped"] == ""
    with pytest.raises(DataError, match="--part 'test'"):
        load_labelled_set(root, None, "test")
    with pytest.raises(DataError, match="at least 2 images"):
        load_labelled_set(root, 1)
    with pytest.raises(DataError, match="does not exist"):
        load_labelled_set(tmp_path / "nope", None)
    assert resolve_target("raw:16") == "raw:16"
    with pytest.raises(ModelError, match="without model.pt"):
        resolve_target(str(root))
    (root / "model.pt").write_bytes(b"")
    assert resolve_target(str(root)) == str(root / "model.pt")
