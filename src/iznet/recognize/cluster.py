"""Face clustering: FaceNet's third use ("find common people") — group face embeddings into people.

Three methods, all on Euclidean distances between unit embeddings:

- ``agglomerative`` (default): average-linkage agglomerative clustering cut at ``threshold``: two groups
  merge while the mean distance between their faces is at most ``threshold``. Needs no number of clusters.
- ``chinese-whispers``: the graph method of face_recognition's clustering example (Biemann 2006): faces are
  nodes, faces closer than ``threshold`` are linked, and each node repeatedly takes the label that weighs
  most among its neighbours (weight ``1 - d/2``), in a seeded random order, until nothing changes.
- ``kmeans``: spherical k-means with ``n_clusters`` (the write-up's seed 003 asks for k-means when the number
  of people is known).

Clusters with fewer than ``min_size`` faces are *unsorted* (label -1): a face seen once is not a person yet.
"""

from __future__ import annotations

import numpy as np

from iznet.errors import IznetError
from iznet.recognize.prototypes import pairwise_distances

METHODS = ("agglomerative", "chinese-whispers", "kmeans")


class ClusterError(IznetError):
    """Bad clustering settings."""


def _relabel(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Clusters numbered 0.. by decreasing size (ties: first face), those under ``min_size`` set to -1."""
    out = np.full(len(labels), -1, dtype=np.int64)
    uniq, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(len(uniq)), key=lambda i: (-counts[i], first[i]))
    k = 0
    for i in order:
        if counts[i] >= min_size:
            out[labels == uniq[i]] = k
            k += 1
    return out


def agglomerative(E: np.ndarray, threshold: float) -> np.ndarray:
    """Average-linkage clusters cut at ``threshold`` (mean distance between two merged groups)."""
    if len(E) == 1:
        return np.zeros(1, dtype=np.int64)
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    D = pairwise_distances(E, E)
    np.fill_diagonal(D, 0.0)
    Z = linkage(squareform(np.maximum(D, D.T), checks=False), method="average")
    return fcluster(Z, t=threshold, criterion="distance").astype(np.int64)


def chinese_whispers(E: np.ndarray, threshold: float, iterations: int = 30, seed: int = 0) -> np.ndarray:
    """Chinese-whispers labels of the graph linking faces closer than ``threshold``."""
    n = len(E)
    D = pairwise_distances(E, E)
    W = np.where(D <= threshold, 1.0 - D / 2.0, 0.0)
    np.fill_diagonal(W, 0.0)
    neighbours = [np.flatnonzero(W[i]) for i in range(n)]
    labels = np.arange(n)
    rng = np.random.default_rng(seed)
    for _ in range(iterations):
        changed = False
        for i in rng.permutation(n):
            nb = neighbours[i]
            if len(nb) == 0:
                continue
            score: dict[int, float] = {}
            for j in nb:
                score[int(labels[j])] = score.get(int(labels[j]), 0.0) + float(W[i, j])
            best = max(score.items(), key=lambda kv: (kv[1], -kv[0]))[0]
            if best != labels[i]:
                labels[i] = best
                changed = True
        if not changed:
            break
    return labels


def cluster_faces(E, method: str = "agglomerative", threshold: float | None = None, n_clusters: int | None = None,
                  min_size: int = 2, seed: int = 0) -> np.ndarray:
    """Cluster face embeddings into people.

    Args:
        E: (N, D) unit embeddings.
        method: one of :data:`METHODS`.
        threshold: distance scale of ``agglomerative`` and ``chinese-whispers`` (e.g. the embedder's calibrated
            unknown-face threshold: faces farther apart than a stranger are not merged).
        n_clusters: number of people for ``kmeans``.
        min_size: smaller clusters become -1 (unsorted).
        seed: randomness of ``chinese-whispers`` and ``kmeans``.

    Returns:
        int64 (N,): cluster 0, 1, ... by decreasing size, -1 for unsorted faces.
    """
    E = np.asarray(E, dtype=np.float64)
    if E.ndim != 2:
        raise ClusterError(f"embeddings must be (N, D), got shape {E.shape}")
    if method not in METHODS:
        raise ClusterError(f"unknown clustering method {method!r}: choose one of {', '.join(METHODS)}")
    if min_size < 1:
        raise ClusterError(f"min_size must be >= 1, got {min_size}")
    if len(E) == 0:
        return np.zeros(0, dtype=np.int64)
    if method == "kmeans":
        if n_clusters is None or n_clusters < 1:
            raise ClusterError("kmeans needs the number of people (--clusters N)")
        from iznet.recognize.prototypes import spherical_kmeans

        labels = spherical_kmeans(E, min(n_clusters, len(E)), seed=seed)[1]
    else:
        if threshold is None or not np.isfinite(threshold) or not 0 < threshold <= 2:
            raise ClusterError(f"{method} needs a distance threshold in (0, 2], got {threshold}")
        labels = agglomerative(E, threshold) if method == "agglomerative" else chinese_whispers(E, threshold,
                                                                                                 seed=seed)
    return _relabel(np.asarray(labels), min_size)


# ---------------------------------------------------------------------------------------------- photos
CLUSTERS_FILE = "clusters.json"
UNSORTED = "unsorted"


def default_threshold(embedder, method: str = "agglomerative") -> float | None:
    """The cut an embedder ships for ``method``: its clustering threshold (``calibration["cluster_threshold"]``,
    chosen for the agglomerative method on development people, ``scripts/choose_cluster_threshold.py``) when
    it has one and the method is agglomerative, else its calibrated unknown-face threshold (faces farther
    apart than a stranger are not merged), else ``None``."""
    cal = getattr(embedder, "calibration", None) or {}
    t = cal.get("cluster_threshold") if isinstance(cal, dict) else None
    if method == "agglomerative" and isinstance(t, (int, float)) and np.isfinite(t) and 0 < t <= 2:
        return float(t)
    return getattr(embedder, "calibrated_threshold", None)


def cluster_photos(photos, out, detector, embedder, *, method: str = "agglomerative", threshold: float | None = None,
                   n_clusters: int | None = None, min_size: int = 2, min_face: int = 24, crop_size: int = 160,
                   headshots: bool = True, progress=None) -> dict:
    """Detect every face in ``photos``, cluster them into people, and write ``out/person_NNN/`` crops,
    ``out/unsorted/`` (faces seen once, or smaller than ``min_face`` pixels), ``out/clusters.json`` and an
    HTML contact sheet ``out/index.html``.

    Rename the ``person_NNN`` folders to names (delete wrong faces) and ``iznet enroll --from-folder out/``
    enrols them (it skips ``unsorted/`` in a folder holding ``clusters.json``).

    Args:
        photos: image files.
        out: a new or empty folder.
        detector, embedder: as for the pipeline (the faces are cut with the 1.3x crop).
        method, threshold, n_clusters, min_size: see :func:`cluster_faces`; ``threshold`` defaults to
            :func:`default_threshold`.
        min_face: faces whose box is smaller than this (longer side, pixels) go to ``unsorted/``.
        crop_size: side of the written crops.
        headshots: a photo in which neither the picture nor its padded canvas shows a face gets the headshot
            fallback of enrolment (:func:`~iznet.recognize.faces.detect_one_face`: one big face on canvases of
            other sizes), so a folder of tight face crops clusters whole; such faces are marked ``"headshot"``
            in the report (check them: the fallback gives a face to about 0.4% of face-free pictures).
        progress: called with 1 after each photo.

    Returns:
        The report written to ``clusters.json`` (settings, counts, skipped photos, one entry per face).
    """
    import json
    from pathlib import Path

    from PIL import Image

    from iznet.data.crops import FACE_CROP_SCALE, crop_face
    from iznet.data.images import load_image
    from iznet.errors import ImageError
    from iznet.recognize.faces import crops_to_batch, detect_one_face, embedder_crops
    from iznet.utils.io import atomic_path, write_json

    out = Path(out)
    photos = list(photos)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ClusterError(f"{out} exists and is not an empty folder; give a new folder for the clusters")
    if threshold is None and method != "kmeans":
        threshold = default_threshold(embedder, method)
        if threshold is None:
            raise ClusterError(f"embedder {embedder.name} has no calibrated threshold; pass --threshold D")
    faces, skipped, crops_small, crops_emb = [], [], [], []
    for p in photos:
        try:
            img = load_image(p)
        except ImageError as e:
            skipped.append({"photo": str(p), "reason": e.reason})
            if progress:
                progress(1)
            continue
        # no fallback canvases: the pipeline's own padded retry only
        boxes, scores, points, fallback = (detect_one_face(detector, img) if headshots
                                           else detect_one_face(detector, img, pads=()))
        if len(boxes) == 0:
            skipped.append({"photo": str(p), "reason": "no face found"})
        if len(boxes):
            crops_emb.extend(embedder_crops(embedder, img, boxes, points))
        for i, (b, s) in enumerate(zip(boxes, scores)):
            side = float(max(b[2] - b[0], b[3] - b[1]))
            faces.append({"photo": str(p), "face": i, "box": [round(float(v), 1) for v in b],
                          "score": round(float(s), 4), "small": side < min_face, "headshot": bool(fallback)})
            crops_small.append(crop_face(img, b, crop_size, scale=FACE_CROP_SCALE))
        if progress:
            progress(1)
    if not faces:
        raise ClusterError(f"no face found in any of the {len(photos)} photos" if photos else "no photos given")
    E = np.asarray(embedder.embed(crops_to_batch(crops_emb), batch_size=64), dtype=np.float64)
    ok = np.array([not f["small"] for f in faces])
    labels = np.full(len(faces), -1, dtype=np.int64)
    if ok.any():
        labels[ok] = cluster_faces(E[ok], method, threshold=threshold, n_clusters=n_clusters, min_size=min_size)
    out.mkdir(parents=True, exist_ok=True)
    n_clusters_found = int(labels.max(initial=-1)) + 1
    width = max(3, len(str(n_clusters_found)))
    used: dict[str, int] = {}
    for f, lab, crop in zip(faces, labels, crops_small):
        folder = UNSORTED if lab < 0 else f"person_{lab + 1:0{width}d}"
        stem = Path(f["photo"]).stem
        name = f"{stem}_{f['face']}.jpg"
        n = used.get(f"{folder}/{name}", 0)
        used[f"{folder}/{name}"] = n + 1
        if n:
            name = f"{stem}_{f['face']}_{n + 1}.jpg"
        f["cluster"] = int(lab)
        f["file"] = f"{folder}/{name}"
        (out / folder).mkdir(exist_ok=True)
        with atomic_path(out / folder / name) as tmp:
            Image.fromarray(crop).save(tmp, format="JPEG", quality=90)
    report = {"format": "iznet-clusters-v1", "method": method, "threshold": threshold, "n_clusters": n_clusters,
              "min_size": min_size, "min_face": min_face, "headshots": bool(headshots), "embedder": embedder.name,
              "photos": len(photos), "faces": len(faces), "clusters": n_clusters_found,
              "unsorted": int((labels < 0).sum()), "too_small": int((~ok).sum()),
              "headshot_faces": int(sum(f["headshot"] for f in faces)), "skipped": skipped,
              "faces_list": faces}
    write_json(out / CLUSTERS_FILE, report)
    _contact_sheet(out, report, width)
    return report


def _contact_sheet(out, report: dict, width: int) -> None:
    """``out/index.html``: one row of thumbnails per cluster, unsorted faces last."""
    import html

    from iznet.utils.io import atomic_path

    by: dict[int, list[dict]] = {}
    for f in report["faces_list"]:
        by.setdefault(f["cluster"], []).append(f)
    rows = []
    for lab in sorted(by, key=lambda c: (c < 0, c)):
        title = UNSORTED if lab < 0 else f"person_{lab + 1:0{width}d}"
        imgs = "".join(f'<img src="{html.escape(f["file"])}" title="{html.escape(f["photo"])}" loading="lazy"'
                       + (' class="headshot">' if f.get("headshot") else ">") for f in by[lab])
        rows.append(f"<h2>{title} <small>({len(by[lab])} faces)</small></h2><div>{imgs}</div>")
    page = ("<!doctype html><meta charset='utf-8'><title>iznet clusters</title><style>body{font-family:sans-serif}"
            "img{width:96px;height:96px;margin:2px;object-fit:cover}"
            "img.headshot{outline:3px dashed orange}</style>"
            f"<h1>{report['clusters']} people in {report['faces']} faces from {report['photos']} photos</h1>"
            "<p>Rename each person_NNN folder to the person's name, delete faces that do not belong, then "
            "<code>iznet enroll --from-folder THIS_FOLDER</code> (unsorted/ is skipped). Faces outlined in "
            "orange were found only by the headshot fallback: check them.</p>" + "".join(rows))
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(page, encoding="utf-8")
