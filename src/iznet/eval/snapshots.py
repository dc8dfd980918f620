"""The t-SNE sequence of a training run: its saved snapshots, summarised and drawn side by side.

``iznet train --snapshot-at ...`` saves the embeddings of a fixed sample of images at chosen points of
training (``RUN/snapshots/samples_<samples>.npz``). :func:`load_snapshots` reads them in order and
summarises each with :func:`iznet.eval.analysis.analyze_embeddings` (the three tools, no accuracy);
:func:`write_snapshot_sequence` projects each with t-SNE and writes ``tsne_sequence.png`` and
``snapshots.json``.

numpy and matplotlib are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from iznet.errors import IznetError

SUMMARY_KEYS = ("people", "images", "mean_intra", "min_inter_medoid", "separated")
"""The keys of an analysis summary each snapshot row keeps."""


def load_snapshots(run_dir: Path) -> tuple[list[tuple[str, Any, Any]], list[dict[str, Any]]]:
    """Read and summarise the snapshots of a training run, in the order of their file names.

    Args:
        run_dir: the training run folder.

    Returns:
        (frames, rows): one frame ``(label, embeddings (N, D), names (N,))`` and one row (``file``,
        ``samples`` and the :data:`SUMMARY_KEYS` of its summary) per snapshot.

    Raises:
        IznetError: the folder is missing, holds no snapshot, or a file is not a snapshot.
    """
    import numpy as np

    from iznet.eval.analysis import analyze_embeddings, labels_from_names

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
        rows.append({"file": p.name, "samples": samples, **{k: summ[k] for k in SUMMARY_KEYS}})
    return frames, rows


def write_snapshot_sequence(run_dir: Path, out: Path, frames: list[tuple[str, Any, Any]],
                            rows: list[dict[str, Any]], *, perplexity: float, iterations: int, seed: int,
                            threads: Optional[int], dpi: int, command: str) -> Path:
    """Project every snapshot with t-SNE and write ``tsne_sequence.png`` and ``snapshots.json`` into ``out``.

    Args:
        run_dir: the training run folder (named in the figure title and the JSON).
        out: the output folder (created when missing).
        frames, rows: from :func:`load_snapshots`; each row gets its ``tsne`` settings.
        perplexity, iterations, seed, threads: the t-SNE settings (see :func:`iznet.eval.plots.tsne_project`).
        dpi: resolution of the figure.
        command: the command line, stored in the JSON.

    Returns:
        the path of the figure.
    """
    from iznet.eval import plots
    from iznet.utils.io import write_json

    projs = [plots.tsne_project(e, perplexity, iterations, seed=seed, threads=threads) for _, e, _ in frames]
    out.mkdir(parents=True, exist_ok=True)
    fig = plots.tsne_sequence_figure(frames, projections=projs, title=f"t-SNE during training: {run_dir.name}")
    figure = out / "tsne_sequence.png"
    plots.save_figure(fig, figure, dpi=dpi)
    for row, proj in zip(rows, projs):
        row["tsne"] = proj.to_dict()
    write_json(out / "snapshots.json", {"command": command, "run": str(run_dir), "frames": rows})
    return figure
