"""Turn scraped photos (one sub-folder per person) into a face dataset, the write-up's first step.

``photos_root/<person>/<photo>`` becomes ``out_root/<person>/<photo stem>.jpg``: the most confident face
of each photo (or every face, ``keep="all"``: ``<stem>_<i>.jpg``, i = 0 for the most confident), cut with
the project's crop convention (:func:`iznet.data.crops.crop_face`, or aligned on the face's landmarks with
``crop="aligned"``, :func:`iznet.data.align.face_pixels`). Nothing is guessed silently: photos
with no face and photos with several faces are listed in the :class:`ExtractReport`, and unreadable files
are skipped, counted and named.

Re-runs are cheap: ``out_root/.extract_manifest.json`` records, per photo, its size and modification
time, the settings (size, margin, keep, detector), the boxes and the files written. A photo whose entry
matches and whose files all exist is not run through the detector again. Every file (crops and manifest)
is written to a temporary name and renamed, so an interrupted run leaves no half-written crop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from iznet.data.crops import FACE_CROP_SCALE
from iznet.data.images import SkipReport, load_image
from iznet.errors import DataError, ImageError
from iznet.recognize.enrol import person_folders
from iznet.recognize.faces import (HEADSHOT_CONF, HEADSHOT_MIN_SIDE, HEADSHOT_PADS, NO_FACE_RETRY_PAD,
                                   detect_faces_with_landmarks, detect_one_face)
from iznet.utils.io import atomic_path, write_json

_logger = logging.getLogger(__name__)

MANIFEST_NAME = ".extract_manifest.json"
MANIFEST_FORMAT = "iznet-extract-v1"
KEEP_CHOICES = ("best", "all")
JPEG_QUALITY = 95
_SAVE_EVERY = 50  # photos between manifest saves, so an interrupted run loses little work


@dataclass
class ExtractReport:
    """What :func:`extract_faces` found.

    Attributes:
        out_root: where the crops are.
        people: person folders seen.
        photos: photo files seen.
        processed: photos run through the detector in this run.
        reused: photos skipped because an earlier run already handled them.
        faces_written: crop files written in this run.
        crops_total: crop files the dataset holds for the photos seen (this run and earlier ones).
        no_face: photos where the detector found no face (this run and earlier ones), sorted.
        several_faces: ``(photo, n)`` for photos with n > 1 faces (with ``keep="best"`` only the most
            confident was kept: check those), sorted.
        unreadable: files that could not be read as images, with the reason.
        empty_folders: person folders without any image.
        without_landmarks: faces asked for as aligned crops that had no landmarks (cut as box crops instead).
    """

    out_root: Path
    people: int = 0
    photos: int = 0
    processed: int = 0
    reused: int = 0
    faces_written: int = 0
    crops_total: int = 0
    no_face: list[Path] = field(default_factory=list)
    several_faces: list[tuple[Path, int]] = field(default_factory=list)
    unreadable: SkipReport = field(default_factory=SkipReport)
    empty_folders: list[Path] = field(default_factory=list)
    without_landmarks: int = 0

    def summary(self) -> str:
        """One line of counts."""
        return (
            f"{self.photos} photos of {self.people} people: {self.processed} processed, {self.reused} already done;"
            f" {self.faces_written} face crops written ({self.crops_total} in {self.out_root});"
            f" {len(self.no_face)} with no face, {len(self.several_faces)} with several faces,"
            f" {self.unreadable.count} unreadable"
            + (f"; {self.without_landmarks} faces without landmarks cut as box crops" if self.without_landmarks else "")
        )


def _settings(size: int, margin: float, keep: str, detector_name: str, crop: str = "box") -> dict[str, Any]:
    out = {"size": int(size), "margin": float(margin), "keep": keep, "detector": detector_name}
    if crop != "box":  # manifests of box crops keep their old settings (nothing is redone)
        out["crop"] = crop
    if keep == "best":  # one person a photo: the headshot fallback (iznet.recognize.faces.detect_one_face)
        out["headshot_fallback"] = [list(HEADSHOT_PADS), HEADSHOT_CONF, HEADSHOT_MIN_SIDE]
    return out


def _load_manifest(path: Path) -> dict[str, dict[str, Any]]:
    import json

    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        _logger.warning("ignoring unreadable manifest %s (%s); every photo is redone", path, e)
        return {}
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT or not isinstance(doc.get("photos"), dict):
        _logger.warning("ignoring manifest %s: not an %s file; every photo is redone", path, MANIFEST_FORMAT)
        return {}
    return doc["photos"]


def _save_manifest(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    write_json(path, {"format": MANIFEST_FORMAT, "photos": dict(sorted(entries.items()))})


def _output_stems(files: list[Path]) -> dict[Path, str]:
    """Output stem per photo: its stem, or stem_ext when two photos of the folder share a stem."""
    counts: dict[str, int] = {}
    for f in files:
        counts[f.stem] = counts.get(f.stem, 0) + 1
    return {f: f.stem if counts[f.stem] == 1 else f"{f.stem}_{f.suffix.lstrip('.').lower()}" for f in files}


def _write_jpeg(path: Path, crop: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(crop).save(tmp, format="JPEG", quality=JPEG_QUALITY)


def _done(entry: dict[str, Any] | None, stat, settings: dict[str, Any], out_root: Path) -> bool:
    if not entry or entry.get("settings") != settings:
        return False
    if entry.get("bytes") != stat.st_size or entry.get("mtime_ns") != stat.st_mtime_ns:
        return False
    return all((out_root / o).is_file() for o in entry.get("outputs", []))


def extract_faces(
    photos_root: str | Path,
    out_root: str | Path,
    detector: Any,
    size: int = 160,
    margin: float = FACE_CROP_SCALE,
    keep: str = "best",
    detector_name: str | None = None,
    progress: Callable[[int], None] | None = None,
    crop: str = "box",
) -> ExtractReport:
    """Cut faces out of ``photos_root/<person>/<photo>`` into ``out_root/<person>/``.

    Args:
        photos_root: one sub-folder per person, photos inside (not recursive).
        out_root: the face dataset written (an identity folder, usable by ``iznet train`` / ``enroll``).
        detector: ``detect(image (H, W, 3) uint8) -> Detections`` (or a callable).
        size: side of the square crops in pixels.
        margin: crop side relative to the face box (the crop convention's scale).
        keep: ``"best"``: the most confident face per photo; ``"all"``: every face.
        detector_name: how the detector is recorded in the manifest (a different name redoes every photo);
            default: its ``name`` attribute, else its class name.
        progress: called with 1 per photo.
        crop: ``box`` (``margin`` × the face box) or ``aligned`` (the face's five landmarks onto the 112×112
            template scaled to ``size``, for embedders trained on aligned faces; a face without landmarks —
            a detector that gives none — is cut as a box crop and counted in ``report.without_landmarks``).

    Returns:
        An :class:`ExtractReport`.

    Raises:
        DataError: ``photos_root`` is not a folder of person folders, ``out_root`` lies inside it, or a bad
            ``keep``/``size``/``margin``.
    """
    if keep not in KEEP_CHOICES:
        raise DataError(f"keep must be one of {', '.join(KEEP_CHOICES)}, got {keep!r}")
    if int(size) < 8:
        raise DataError(f"crop size must be at least 8 pixels, got {size}")
    if not margin > 0:
        raise DataError(f"margin must be positive, got {margin}")
    from iznet.data.align import CROP_CONVENTIONS

    if crop not in CROP_CONVENTIONS:
        raise DataError(f"crop must be one of {', '.join(CROP_CONVENTIONS)}, got {crop!r}")
    photos_root, out_root = Path(photos_root), Path(out_root)
    if out_root.resolve().is_relative_to(photos_root.resolve()):
        raise DataError(f"the output folder {out_root} lies inside the photo folder {photos_root}; choose another")
    folders = person_folders(photos_root)
    name = detector_name or str(getattr(detector, "name", type(detector).__name__))
    settings = _settings(size, margin, keep, name, crop)
    manifest_path = out_root / MANIFEST_NAME
    entries = _load_manifest(manifest_path)
    report = ExtractReport(out_root=out_root, people=len(folders))
    dirty = 0
    try:
        for person, files in folders:
            if not files:
                report.empty_folders.append(photos_root / person)
                continue
            stems = _output_stems(files)
            for photo in files:
                report.photos += 1
                key = f"{person}/{photo.name}"
                try:
                    stat = photo.stat()
                except OSError as e:
                    report.unreadable.add(photo, f"cannot stat file ({e.strerror or e})")
                    if progress is not None:
                        progress(1)
                    continue
                entry = entries.get(key)
                if _done(entry, stat, settings, out_root):
                    report.reused += 1
                else:
                    try:
                        img = load_image(photo)
                    except ImageError as e:
                        report.unreadable.add(photo, e.reason)
                        entries.pop(key, None)
                        if progress is not None:
                            progress(1)
                        continue
                    entry, missing = _extract_one(img, detector, out_root, person, stems[photo], size, margin,
                                                  keep, entry, crop)
                    report.without_landmarks += missing
                    entry.update(settings=settings, bytes=stat.st_size, mtime_ns=stat.st_mtime_ns)
                    entries[key] = entry
                    report.processed += 1
                    report.faces_written += len(entry["outputs"])
                    dirty += 1
                    if dirty >= _SAVE_EVERY:
                        _save_manifest(manifest_path, entries)
                        dirty = 0
                n = int(entry["faces"])
                report.crops_total += len(entry["outputs"])
                if n == 0:
                    report.no_face.append(photo)
                elif n > 1:
                    report.several_faces.append((photo, n))
                if progress is not None:
                    progress(1)
    finally:
        if dirty or not manifest_path.exists():
            _save_manifest(manifest_path, entries)
    report.no_face.sort()
    report.several_faces.sort()
    return report


def _extract_one(img: np.ndarray, detector: Any, out_root: Path, person: str, stem: str, size: int,
                 margin: float, keep: str, old: dict[str, Any] | None, crop: str = "box"
                 ) -> tuple[dict[str, Any], int]:
    """Detect, crop and write one photo's faces; returns its manifest entry (without settings and stat) and
    how many aligned faces had no landmarks (cut as box crops)."""
    from iznet.data.align import face_pixels, needs_landmarks

    if keep == "best":  # a photo of one person: the headshot fallback when nothing else finds a face
        boxes, scores, points, _ = detect_one_face(detector, img)
    else:
        boxes, scores, points = detect_faces_with_landmarks(detector, img, retry_pad=NO_FACE_RETRY_PAD)
    chosen = range(len(boxes)) if keep == "all" else range(min(1, len(boxes)))
    outputs: list[str] = []
    missing = 0
    for i in chosen:
        rel = f"{person}/{stem}.jpg" if keep == "best" else f"{person}/{stem}_{i}.jpg"
        lm = points[i] if points is not None else None
        missing += needs_landmarks(crop, lm)
        _write_jpeg(out_root / rel, face_pixels(img, boxes[i], lm, int(size), crop, float(margin)))
        outputs.append(rel)
    for stale in set((old or {}).get("outputs", [])) - set(outputs):  # from an earlier run with other results
        (out_root / stale).unlink(missing_ok=True)
    return {
        "faces": int(len(boxes)),
        "outputs": outputs,
        "boxes": [[round(float(v), 2) for v in b] for b in boxes],
        "scores": [round(float(s), 4) for s in scores],
    }, missing
