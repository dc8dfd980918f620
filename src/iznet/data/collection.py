"""The training collection: many public identity folders turned into one set of clean, deduplicated packs.

``iznet data build`` runs three stages over ``--source NAME=DIR`` identity folders (``DIR/<person>/<image>``,
optionally with ``DIR/people.csv``: ``folder,name,gender,group``):

1. **Landmarks** (cached per source in ``OUT/landmarks/<source>.npz``, so a re-run is cheap): a teacher
   detector (YuNet) finds the face of each image on a black-padded canvas (so faces that fill their crop are
   found), keeps the confident face nearest the image centre, and stores its box and five landmarks plus a
   perceptual hash (:func:`phash`) and a 16x16 grey thumbnail of the aligned face. Images without such a
   face are skipped and counted with the reason.
2. **Curation**: identities are keyed by their normalised name where a source gives full names (so one
   person in two sources becomes one identity) and by ``source/folder`` otherwise; images whose aligned
   faces are near duplicates (hash distance <= ``dup_bits`` *and* thumbnails within ``dup_mad`` grey
   levels) are kept once within an identity and dropped from both sides when two identities share one;
   identities on the exclusion lists (e.g. every LFW name when a model is to be scored on LFW) are removed;
   a share of the *groups* of each source (a FIW family, a person elsewhere) is held out for evaluation,
   chosen by a hash of the group key (stable across runs and machines); people with one image in the
   training part stay only as negatives (``singletons`` in the counts).
3. **Packs**: ``train_<crop>.pt`` and ``heldout_<crop>.pt`` for each crop convention: ``aligned``
   (:func:`iznet.data.align.align_face` on the template) and ``box`` (the 1.3x square of
   :func:`iznet.data.crops.crop_face` around the teacher's tight box). ``collection.json`` holds the
   sources, settings and every count; ``identities.csv`` one row per identity.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import time
import unicodedata
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from iznet.data.align import align_face
from iznet.data.crops import crop_face
from iznet.data.images import IMAGE_EXTENSIONS, load_image
from iznet.errors import DataError, ImageError

_logger = logging.getLogger(__name__)

COLLECTION_FORMAT = "iznet-collection-v1"
CROPS = ("aligned", "box")
LANDMARK_CACHE_VERSION = 2


@dataclass
class SourceSpec:
    """One identity folder of the collection."""

    name: str
    root: Path
    #: identities are keyed by their normalised full name (merged across sources) rather than source/folder
    named: bool = False


@dataclass
class BuildConfig:
    """Settings of a collection build (all recorded in collection.json)."""

    size: int = 112
    held_out_share: float = 0.1
    min_score: float = 0.6  # teacher confidence
    min_eye_px: float = 12.0  # inter-ocular distance in source pixels; smaller faces are too small to trust
    pad: float = 0.5  # canvas padding per side, as a share of the image side, for the teacher
    dup_bits: int = 6
    dup_mad: float = 8.0
    quality: int = 90
    crops: tuple[str, ...] = CROPS
    exclude_names: list[str] = field(default_factory=list)
    exclude_sources: dict[str, str] = field(default_factory=dict)  # list name -> where it came from
    #: identity keys to drop whatever their source (``fiw/F0696_MID1``, ``celeba10k/celeba974``): people of
    #: evaluation sets found by face among sources that give no full name (scripts/overlap_check.py)
    exclude_keys: list[str] = field(default_factory=list)
    #: also drop named identities one edit (a letter added, dropped, changed or two swapped) from an excluded
    #: name of 8+ characters: misspelt names ("Victoria Beckam")
    exclude_one_edit: bool = False


def normalise_name(name: str) -> str:
    """A key that makes ``"Tom_Hanks"``, ``"tom hanks"`` and ``"Tóm  Hanks"`` the same person."""
    s = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    s = re.sub(r"[^a-z0-9]+", " ", s.lower().replace("_", " "))
    return " ".join(s.split())


def _deletions(s: str) -> set[str]:
    return {s[:i] + s[i + 1:] for i in range(len(s))}


def within_one_edit(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with at most one letter added, dropped or changed, or two neighbours swapped."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                   and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    return short[i:] == long[i + 1:]


class OneEditIndex:
    """Names within one edit of a query (:func:`within_one_edit`), found through shared single-letter
    deletions (candidates, then checked) rather than by comparing the query with every name."""

    def __init__(self, names: Iterable[str], min_len: int = 8):
        self.min_len = min_len
        self.names = {n for n in names if len(n) >= min_len}
        self.by_deletion: dict[str, set[str]] = {}
        for n in self.names:
            for d in _deletions(n):
                self.by_deletion.setdefault(d, set()).add(n)

    def match(self, s: str) -> str | None:
        """The first (sorted) listed name within one edit of ``s``, or None."""
        if len(s) < self.min_len - 1:
            return None
        if s in self.names:
            return s
        found = set(self.by_deletion.get(s, ()))  # s lacks a letter of a name
        for d in _deletions(s):
            if d in self.names:  # s has a letter more
                found.add(d)
            found |= self.by_deletion.get(d, set())  # a letter changed or two swapped: candidates only
        found = {n for n in found if within_one_edit(s, n)}
        return min(found) if found else None


def stable_share(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` alone (SHA-1), for splits that survive re-runs and new sources."""
    return int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big") / 2.0**64


# ---------------------------------------------------------------------------------------------- hashing


def phash(grey: np.ndarray) -> int:
    """64-bit perceptual hash (DCT of a 32x32 grey image, the 8x8 lowest frequencies against their median).

    Args:
        grey: (H, W) uint8 or float image (any size; resized to 32x32 with area averaging).
    """
    g = cv2.resize(np.asarray(grey, dtype=np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    d = cv2.dct(g)[:8, :8].reshape(-1)
    bits = d > np.median(d[1:])
    bits[0] = False  # the DC term carries brightness, not structure
    return int(np.packbits(bits.astype(np.uint8)).view(">u8")[0])


def _popcount64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64)
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(1)


def near_duplicate_pairs(hashes: Sequence[int], max_bits: int) -> np.ndarray:
    """All pairs ``(i, j)``, ``i < j``, whose hashes differ in at most ``max_bits`` bits.

    Exact by the pigeonhole principle: the 64 bits are cut into ``max_bits + 1`` chunks, so two hashes
    within ``max_bits`` agree exactly on at least one chunk; only pairs that share a chunk are compared.

    Returns:
        (P, 2) int64, sorted, unique.
    """
    h = np.asarray([int(v) & (2**64 - 1) for v in hashes], dtype=np.uint64)
    n = len(h)
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    if not 0 <= max_bits < 64:
        raise ValueError(f"max_bits must be in 0..63, got {max_bits}")
    bounds = np.linspace(0, 64, max_bits + 2).round().astype(int)
    found = set()
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        width = int(hi - lo)
        if width == 0:
            continue
        chunk = (h >> np.uint64(64 - hi)) & np.uint64((1 << width) - 1)
        order = np.argsort(chunk, kind="stable")
        c = chunk[order]
        starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
        ends = np.r_[starts[1:], n]
        for s, e in zip(starts, ends):
            if e - s < 2:
                continue
            members = order[s:e]
            hm = h[members]
            ii, jj = np.triu_indices(len(members), 1)
            dist = _popcount64(hm[ii] ^ hm[jj])
            keep = dist <= max_bits
            a, b = members[ii[keep]], members[jj[keep]]
            found.update(zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist()))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    return np.array(sorted(found), dtype=np.int64)


# ---------------------------------------------------------------------------------------------- stage 1


def _list_source(src: SourceSpec) -> tuple[list[str], dict[str, dict[str, str]]]:
    """Sorted relative image paths ``person/file`` and the people.csv rows by folder."""
    if not src.root.is_dir():
        raise DataError(f"source {src.name!r}: {src.root} is not a folder; expected DIR/<person>/<image>")
    rels = []
    for person in sorted(p for p in src.root.iterdir() if p.is_dir()):
        for f in sorted(person.iterdir()):
            if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS:
                rels.append(f"{person.name}/{f.name}")
    if not rels:
        raise DataError(f"source {src.name!r}: no images in {src.root}/<person>/")
    meta = {}
    csv_path = src.root / "people.csv"
    if csv_path.is_file():
        with open(csv_path, newline="") as f:
            for row in csv.DictReader(f):
                meta[row["folder"]] = row
    return rels, meta


def pick_face(boxes: np.ndarray, scores: np.ndarray, image_wh: tuple[int, int], min_score: float) -> int | None:
    """Index of the face an identity photo is about: confident, centre inside the middle of the picture,
    largest by area times closeness to the centre; None when no face qualifies."""
    w, h = image_wh
    best, best_val = None, -1.0
    for i, (b, s) in enumerate(zip(boxes, scores)):
        if s < min_score:
            continue
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        dx, dy = abs(cx - w / 2) / w, abs(cy - h / 2) / h
        if dx > 0.3 or dy > 0.3:
            continue
        val = (b[2] - b[0]) * (b[3] - b[1]) * (1.0 - dx - dy)
        if val > best_val:
            best, best_val = i, val
    return best


def detect_one(img: np.ndarray, teacher, cfg: BuildConfig):
    """(box (4,), landmarks (5, 2), score) of the photo's face in pixels of ``img``, or a skip reason."""
    h, w = img.shape[:2]
    px, py = int(round(cfg.pad * w)), int(round(cfg.pad * h))
    canvas = cv2.copyMakeBorder(img, py, py, px, px, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    # the teacher finds faces from about 10 px up to the whole input; scale large canvases down for speed
    f = min(1.0, 640.0 / max(canvas.shape[:2]))
    if f < 1.0:
        canvas = cv2.resize(canvas, (int(round(canvas.shape[1] * f)), int(round(canvas.shape[0] * f))),
                            interpolation=cv2.INTER_AREA)
    boxes, lms, scores = teacher.detect_landmarks(canvas)
    if len(boxes) == 0:
        return "no face found"
    boxes, lms = boxes / f, lms / f
    boxes[:, 0::2] -= px
    boxes[:, 1::2] -= py
    lms[..., 0] -= px
    lms[..., 1] -= py
    i = pick_face(boxes, scores, (w, h), cfg.min_score)
    if i is None:
        return "no confident face near the centre"
    eye = float(np.hypot(*(lms[i, 1] - lms[i, 0])))
    if eye < cfg.min_eye_px:
        return f"face too small (eyes < {cfg.min_eye_px:g} px apart)"
    return boxes[i], lms[i], float(scores[i])


def scan_source(src: SourceSpec, cache_dir: Path, teacher_factory: Callable[[], object], cfg: BuildConfig,
                progress: Callable[[int], None] | None = None, rels: list[str] | None = None) -> dict[str, np.ndarray]:
    """Stage 1 for one source, cached in ``cache_dir/<name>.npz`` (reused while the file list is unchanged).
    ``rels``: the source's images as :func:`_list_source` lists them (listed here when not given)."""
    if rels is None:
        rels, _ = _list_source(src)
    cache = cache_dir / f"{src.name}.npz"
    key = hashlib.sha1(("\n".join(rels) + json.dumps(
        [LANDMARK_CACHE_VERSION, cfg.min_score, cfg.min_eye_px, cfg.pad])).encode()).hexdigest()
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["key"]) == key:
                if progress:
                    progress(len(rels))
                return {k: z[k] for k in z.files}
    teacher = teacher_factory()
    n = len(rels)
    boxes = np.full((n, 4), np.nan)
    lms = np.full((n, 5, 2), np.nan)
    scores = np.zeros(n)
    hashes = np.zeros(n, dtype=np.uint64)
    thumbs = np.zeros((n, 16, 16), dtype=np.uint8)
    sizes = np.zeros((n, 2), dtype=np.int32)
    reasons = np.array([""] * n, dtype=object)
    for k, rel in enumerate(rels):
        try:
            img = load_image(src.root / rel)
        except ImageError as e:
            reasons[k] = f"unreadable: {e.reason}"
        else:
            sizes[k] = img.shape[1], img.shape[0]
            got = detect_one(img, teacher, cfg)
            if isinstance(got, str):
                reasons[k] = got
            else:
                boxes[k], lms[k], scores[k] = got
                grey = cv2.cvtColor(align_face(img, lms[k], 64), cv2.COLOR_RGB2GRAY)
                hashes[k] = phash(grey)
                thumbs[k] = cv2.resize(grey, (16, 16), interpolation=cv2.INTER_AREA)
        if progress and (k + 1) % 100 == 0:
            progress(100)
    if progress:
        progress(n % 100)
    out = {"key": np.array(key), "rels": np.array(rels), "boxes": boxes, "landmarks": lms, "scores": scores,
           "hashes": hashes, "thumbs": thumbs, "sizes": sizes, "reasons": reasons.astype(str)}
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(cache)
    return out


# ---------------------------------------------------------------------------------------------- stage 2


@dataclass
class Curated:
    """The collection after curation: one row per kept image."""

    source: np.ndarray  # (N,) source index
    rel: np.ndarray  # (N,) "person/file" inside the source
    identity: np.ndarray  # (N,) identity key
    held_out: np.ndarray  # (N,) bool
    boxes: np.ndarray
    landmarks: np.ndarray
    identities: dict[str, dict]  # key -> name, gender, group, sources
    counts: dict


def curate(sources: Sequence[SourceSpec], scans: Sequence[dict], cfg: BuildConfig,
           metas: Sequence[dict] | None = None) -> Curated:
    """Stage 2: identity keys, deduplication, exclusions, held-out split (see the module docstring).
    ``metas``: each source's people.csv rows by folder (read here when not given)."""
    excluded = {normalise_name(n) for n in cfg.exclude_names}
    excluded_keys = set(cfg.exclude_keys)
    near = OneEditIndex(excluded) if cfg.exclude_one_edit else None
    rows = []  # (source index, row in scan)
    ident_of, info = [], {}
    counts: dict = {"per_source": {}, "skipped": {}}
    for si, (src, scan) in enumerate(zip(sources, scans)):
        meta = metas[si] if metas is not None else _list_source(src)[1]
        c = Counter()
        for r, (rel, reason) in enumerate(zip(scan["rels"], scan["reasons"])):
            if reason:
                c[str(reason).split(":")[0] if reason.startswith("unreadable") else str(reason)] += 1
                continue
            folder = str(rel).split("/", 1)[0]
            m = meta.get(folder, {})
            name = (m.get("name") or "").strip() or folder.replace("_", " ")
            if src.named:
                key = normalise_name(name)
            else:
                key = f"{src.name}/{folder}"
            if key in excluded_keys:
                c["identity on the key exclusion list"] += 1
                continue
            if src.named and key in excluded:
                c["identity on an exclusion list"] += 1
                continue
            if src.named and near is not None and near.match(key) is not None:
                c["identity one edit from an excluded name"] += 1
                continue
            group = f"{src.name}/{m.get('group') or folder}" if not src.named else key
            d = info.setdefault(key, {"name": name, "gender": "", "group": group, "sources": []})
            if m.get("gender") in ("m", "f") and not d["gender"]:
                d["gender"] = m["gender"]
            if src.name not in d["sources"]:
                d["sources"].append(src.name)
            rows.append((si, r))
            ident_of.append(key)
        counts["skipped"][src.name] = dict(c)
    n = len(rows)
    hashes = np.array([scans[si]["hashes"][r] for si, r in rows], dtype=np.uint64)
    thumbs = np.stack([scans[si]["thumbs"][r] for si, r in rows]).astype(np.float32) if n else np.zeros((0, 16, 16))
    keep = np.ones(n, dtype=bool)
    pairs = near_duplicate_pairs(hashes, cfg.dup_bits)
    dup_within = dup_across = 0
    if len(pairs):
        mad = np.abs(thumbs[pairs[:, 0]] - thumbs[pairs[:, 1]]).mean(axis=(1, 2))
        pairs = pairs[mad <= cfg.dup_mad]
        for i, j in pairs.tolist():
            if ident_of[i] == ident_of[j]:
                if keep[i] and keep[j]:
                    keep[j] = False
                    dup_within += 1
            else:
                dup_across += int(keep[i]) + int(keep[j])
                keep[i] = keep[j] = False
    counts["duplicates_within_identity_dropped"] = dup_within
    counts["duplicates_across_identities_dropped"] = dup_across
    idx = np.flatnonzero(keep)
    ident = np.array(ident_of, dtype=object)[idx] if n else np.zeros(0, dtype=object)
    held = np.array([stable_share(info[k]["group"]) < cfg.held_out_share for k in ident], dtype=bool)
    src_idx = np.array([rows[i][0] for i in idx], dtype=np.int64)
    rel = np.array([scans[rows[i][0]]["rels"][rows[i][1]] for i in idx], dtype=object)
    boxes = np.array([scans[rows[i][0]]["boxes"][rows[i][1]] for i in idx]).reshape(-1, 4)
    lms = np.array([scans[rows[i][0]]["landmarks"][rows[i][1]] for i in idx]).reshape(-1, 5, 2)
    per_ident = Counter(ident.tolist())
    for k in list(info):
        if k not in per_ident:
            del info[k]
        else:
            info[k]["images"] = per_ident[k]
            info[k]["part"] = "held-out" if stable_share(info[k]["group"]) < cfg.held_out_share else "train"
    for si, src in enumerate(sources):
        m = src_idx == si
        ids = Counter(ident[m].tolist())
        counts["per_source"][src.name] = {
            "scanned": int(len(scans[si]["rels"])), "kept": int(m.sum()),
            "identities": len(ids), "identities_2plus": sum(1 for v in ids.values() if v >= 2),
            "train_images": int((m & ~held).sum()), "held_out_images": int((m & held).sum()),
            "held_out_identities": len({k for k in ident[m & held].tolist()}),
        }
    for part, mask in (("train", ~held), ("held_out", held)):
        ids = Counter(ident[mask].tolist())
        counts[part] = {"images": int(mask.sum()), "identities": len(ids),
                        "identities_2plus": sum(1 for v in ids.values() if v >= 2),
                        "singletons": sum(1 for v in ids.values() if v == 1),
                        "women": sum(1 for k in ids if info[k]["gender"] == "f"),
                        "men": sum(1 for k in ids if info[k]["gender"] == "m")}
    counts["merged_identities"] = sorted(k for k, d in info.items() if len(d["sources"]) > 1)
    return Curated(src_idx, rel, ident, held, boxes, lms, info, counts)


# ---------------------------------------------------------------------------------------------- stage 3


def _crop(img: np.ndarray, box: np.ndarray, lm: np.ndarray, crop: str, size: int) -> np.ndarray:
    if crop == "aligned":
        return align_face(img, lm, size)
    if crop == "box":
        return crop_face(img, box, size)
    raise DataError(f"unknown crop {crop!r}: choose one of {', '.join(CROPS)}")


def write_packs(cur: Curated, sources: Sequence[SourceSpec], out: Path, cfg: BuildConfig,
                progress: Callable[[int], None] | None = None) -> dict:
    """Stage 3: one pack per (part, crop); images load once per part and are cropped both ways."""
    from iznet.data.pack import pack_images

    stats = {}
    for part, mask in (("train", ~cur.held_out), ("heldout", cur.held_out)):
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            continue
        classes = sorted(set(cur.identity[idx].tolist()))
        label = {c: i for i, c in enumerate(classes)}
        crops: dict[str, list] = {c: [] for c in cfg.crops}
        for i in idx:
            src = sources[cur.source[i]]
            img = load_image(src.root / cur.rel[i])
            rel = f"{cur.identity[i]}/{src.name}/{cur.rel[i].split('/', 1)[1]}"
            for c in cfg.crops:
                crops[c].append((rel, label[cur.identity[i]], _crop(img, cur.boxes[i], cur.landmarks[i], c, cfg.size)))
            if progress:
                progress(1)
        for c in cfg.crops:
            path = out / f"{part}_{c}{cfg.size}.pt"
            s = pack_images(crops[c], path, cfg.size, classes=classes, quality=cfg.quality, crop=None,
                            meta={"source": "collection", "crop": c, "part": part,
                                  "dataset": COLLECTION_FORMAT})
            stats[path.name] = {"images": s.count, "identities": len(classes), "megabytes": round(s.megabytes, 1)}
            crops[c] = []
    return stats


def build_collection(sources: Sequence[SourceSpec], out: str | Path, cfg: BuildConfig,
                     teacher_factory: Callable[[], object],
                     progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Run all three stages; returns (and writes to ``OUT/collection.json``) the report.

    Args:
        sources: the identity folders (names must be unique).
        out: output folder (``landmarks/`` cache, packs, collection.json, identities.csv).
        cfg: settings.
        teacher_factory: builds the teacher detector (an object with ``detect_landmarks(image)``).
        progress: called as ``progress(stage, done_increment, total)``.
    """
    out = Path(out)
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise DataError(f"source names must be unique, got {names}")
    bad = [c for c in cfg.crops if c not in CROPS]
    if bad:
        raise DataError(f"unknown crop {bad[0]!r}: choose from {', '.join(CROPS)}")
    if not 0 <= cfg.held_out_share < 1:
        raise DataError(f"held-out share must be in [0, 1), got {cfg.held_out_share}")
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    listed = [_list_source(s) for s in sources]
    total = sum(len(rels) for rels, _ in listed)
    scans = [scan_source(s, out / "landmarks", teacher_factory, cfg,
                         (lambda k: progress("landmarks", k, total)) if progress else None, rels=rels)
             for s, (rels, _) in zip(sources, listed)]
    t1 = time.perf_counter()
    cur = curate(sources, scans, cfg, metas=[meta for _, meta in listed])
    packs = write_packs(cur, sources, out, cfg,
                        (lambda k: progress("packs", k, len(cur.identity))) if progress else None)
    report = {
        "format": COLLECTION_FORMAT,
        "sources": [{"name": s.name, "root": str(s.root), "named": s.named,
                     **_source_json(s.root)} for s in sources],
        "config": {k: v for k, v in asdict(cfg).items() if k != "exclude_names"},
        "excluded_names": len(cfg.exclude_names),
        "counts": cur.counts,
        "packs": packs,
        "seconds": {"landmarks": round(t1 - t0, 1), "curate_and_pack": round(time.perf_counter() - t1, 1)},
    }
    (out / "collection.json").write_text(json.dumps(report, indent=1) + "\n")
    with open(out / "identities.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["identity", "name", "gender", "group", "sources", "images", "part"])
        for k in sorted(cur.identities):
            d = cur.identities[k]
            w.writerow([k, d["name"], d["gender"], d["group"], "+".join(d["sources"]), d["images"], d["part"]])
    return report


def _source_json(root: Path) -> dict:
    p = Path(root) / "SOURCE.json"
    if not p.is_file():
        return {}
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError):
        return {}
    return {k: d[k] for k in ("repo", "commit", "path") if k in d}
