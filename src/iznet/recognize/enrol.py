"""Enrolling people into a gallery (files, folders of people) and re-embedding a gallery with another
embedder, all or nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from iznet.data.crops import FACE_CROP_SCALE
from iznet.data.images import list_images, load_image
from iznet.errors import DataError, GalleryError, ImageError
from iznet.recognize.gallery import SOURCE_META_PREFIX, Gallery, sha256_file, validate_name
from iznet.recognize.prototypes import DEFAULT_METHOD
from iznet.recognize.faces import crops_to_batch, detect_one_face, embedder_crops, face_crops, whole_image_crop
from iznet.recognize.tags import embedder_tag

if TYPE_CHECKING:  # the embedder module imports torch; the label path must not need it
    from iznet.recognize.embedder import Embedder

ENROLL_HINT = "enrol people with `iznet enroll NAME PHOTOS...` or `iznet enroll --from-folder ROOT`"


# ---------------------------------------------------------------------------------------------- enrolment
@dataclass
class FaceCrop:
    """One picture turned into a face crop for enrolment.

    Attributes:
        path: the file.
        sha256: hex SHA-256 of its bytes.
        crop: uint8 (S, S, 3).
        box: the detected face box (None: the whole image was the crop).
        n_faces: faces the detector found (1 when not detecting).
        landmarks: the face's five points when the detector gives them.
        headshot: the face was found by the headshot fallback only (:func:`~iznet.recognize.faces.detect_one_face`).
    """

    path: Path
    sha256: str
    crop: np.ndarray
    box: tuple[float, float, float, float] | None
    n_faces: int = 1
    landmarks: np.ndarray | None = None
    headshot: bool = False


def face_crop_from_file(path: str | Path, size: int, detector: Any | None = None,
                        margin_scale: float = FACE_CROP_SCALE, convention: str = "box") -> FaceCrop:
    """Read a picture of one person and cut their face.

    Args:
        path: the image file.
        size: crop side (the embedder's ``input_size``).
        detector: None when the image already is a face crop (its centre square is used); otherwise the
            most confident face is kept (``n_faces`` tells how many there were), with the headshot fallback
            when the picture shows no face at the operating threshold.
        margin_scale: crop convention scale.
        convention: ``box`` or ``aligned`` (the embedder's :attr:`~iznet.recognize.embedder.Embedder.face_crop`).

    Raises:
        ImageError: unreadable file. NoFaceError: the detector found no face.
    """
    from iznet.errors import NoFaceError

    path = Path(path)
    img = load_image(path)
    if detector is None:
        return FaceCrop(path, sha256_file(path), whole_image_crop(img, size), None, 1)
    boxes, _, points, headshot = detect_one_face(detector, img)
    if len(boxes) == 0:
        raise NoFaceError(path)
    box = tuple(float(v) for v in boxes[0])
    lm = points[0] if points is not None else None
    crop = face_crops(img, boxes[:1], None if lm is None else lm[None], size, convention, margin_scale)[0]
    return FaceCrop(path, sha256_file(path), crop, box, len(boxes), lm, headshot)


@dataclass
class EnrollReport:
    """What :func:`enroll_files` did for one person.

    Attributes:
        name: the person's stored name ('' when nothing could be enrolled).
        created: the person is new.
        added: files enrolled.
        duplicates: files that person already had (same content).
        skipped: ``(file, reason)`` for each file not enrolled (unreadable, no face).
        several_faces: ``(file, n)`` for photos with n > 1 faces, where the most confident was kept.
        headshots: files whose face only the headshot fallback found (a low-confidence box filling the picture).
    """

    name: str
    created: bool = False
    added: list[Path] = field(default_factory=list)
    duplicates: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    several_faces: list[tuple[Path, int]] = field(default_factory=list)
    headshots: list[Path] = field(default_factory=list)


def enroll_files(
    gallery: Gallery,
    name: str,
    paths: Iterable[str | Path],
    embedder: Embedder,
    detector: Any | None = None,
    method: str = DEFAULT_METHOD,
    k: int = 3,
    margin_scale: float = FACE_CROP_SCALE,
    progress: Callable[[int], None] | None = None,
) -> EnrollReport:
    """Enrol pictures of one person: crop (detecting the most confident face unless ``detector`` is None),
    embed in batches, store in ONE gallery transaction, and remember each crop box for rebuilds.

    Files that cannot be read or hold no face are skipped and listed, never silently dropped.

    Args:
        gallery: the gallery written.
        name: the person.
        paths: image files (photos of that one person, or face crops when ``detector`` is None).
        embedder: the embedder (its :func:`embedder_tag` must match the gallery's, unless it is empty).
        detector: face detector, or None for face crops.
        method, k: prototypes stored for the person.
        margin_scale: crop convention scale.
        progress: called with 1 per file handled.

    Raises:
        GalleryError: bad name, wrong embedder for the gallery, or no file of the person could be used.
    """
    from iznet.errors import NoFaceError

    validate_name(name)
    tag = embedder_tag(embedder)
    check_gallery_embedder(gallery, tag)
    report = EnrollReport(name="")
    crops: list[FaceCrop] = []
    for p in paths:
        p = Path(p)
        try:
            fc = face_crop_from_file(p, int(embedder.input_size), detector, margin_scale,
                                     getattr(embedder, "face_crop", "box"))
        except ImageError as e:
            report.skipped.append((p, e.reason))
        except NoFaceError:
            report.skipped.append((p, "no face found"))
        except GalleryError as e:  # sha256_file on a file that vanished meanwhile
            report.skipped.append((p, str(e)))
        else:
            crops.append(fc)
            if fc.n_faces > 1:
                report.several_faces.append((p, fc.n_faces))
            if fc.headshot:
                report.headshots.append(p)
        if progress is not None:
            progress(1)
    if not crops:
        shown = report.skipped[:10]
        why = "; ".join(f"{p.name}: {r}" for p, r in shown) or "no images were given"
        if len(report.skipped) > len(shown):
            why += f"; and {len(report.skipped) - len(shown)} more"
        raise GalleryError(f"nothing to enrol for {name!r}: {why}")
    emb = embedder.embed(crops_to_batch([c.crop for c in crops]), batch_size=64)
    items = [(str(c.path.resolve()), c.sha256, e) for c, e in zip(crops, emb)]
    # the crop records go in the enrolment's own transaction: a crash cannot keep one without the other
    sources = {c.sha256: _source_record(c, margin_scale) for c in crops}
    res = gallery.enroll(name, items, embedder_tag=tag, method=method, k=k, sources=sources)
    gallery.record_embedder_source(tag, getattr(embedder, "source", None))
    by_label = {str(c.path.resolve()): c for c in crops}
    report.name, report.created = res.name, res.created
    report.added = [by_label[a].path for a in res.added]
    report.duplicates = [by_label[d].path for d in res.duplicates]
    return report


def _source_record(c: FaceCrop, margin_scale: float) -> dict:
    """How an enrolled picture was cut (its box, margin and landmarks), so a rebuild cuts it the same way."""
    rec = {"box": None if c.box is None else [round(v, 3) for v in c.box], "margin": margin_scale}
    if c.landmarks is not None:
        rec["landmarks"] = [[round(float(x), 3), round(float(y), 3)] for x, y in c.landmarks]
    return rec


def check_gallery_embedder(gallery: Gallery, tag: str) -> None:
    """Raise :class:`GalleryError` when ``gallery`` holds embeddings but none from ``tag`` (enrolling would mix
    models whose distances mean different things)."""
    tags = gallery.embedders()
    if tags and tag not in tags:
        raise GalleryError(
            f"gallery {gallery.path} holds embeddings from {', '.join(repr(t) for t in tags)}, not from {tag!r};"
            " use the embedder it was enrolled with, or `iznet gallery rebuild --embedder ...` first"
        )


def person_folders(root: str | Path) -> list[tuple[str, list[Path]]]:
    """``root/<person>/<image>``: (folder name, its images sorted) per person folder, sorted by name.

    Hidden folders are ignored, and ``unsorted/`` in a folder written by ``iznet cluster`` (it holds
    ``clusters.json``); folders without images are kept with an empty list (the caller reports them).

    Raises:
        DataError: ``root`` is not a folder, or holds no sub-folders.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; expected ROOT/<person>/<image>")
    # a folder written by `iznet cluster` keeps the faces it could not place in unsorted/: not a person
    clustered = (root / "clusters.json").is_file()
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
                  and not (clustered and d.name == "unsorted"))
    if not dirs:
        raise DataError(f"{root} has no person sub-folders; expected ROOT/<person>/<image>")
    return [(d.name, list_images(d, recursive=False)) for d in dirs]


def ignored_in_folder(root: str | Path) -> list[str]:
    """What ``--from-folder ROOT`` does not enrol because it is not ``ROOT/<person>/<image>``: images lying in
    ROOT itself and folders nested inside a person's folder (said to the user, never silently skipped)."""
    root = Path(root)
    out = [f"{p}: an image at the top level belongs to no person folder" for p in list_images(root, recursive=False)]
    for name, _ in person_folders(root):
        for sub in sorted(d for d in (root / name).iterdir() if d.is_dir() and not d.name.startswith(".")):
            out.append(f"{sub}: a folder inside a person's folder is not searched")
    return out


def enroll_folder(
    gallery: Gallery,
    root: str | Path,
    embedder: Embedder,
    detector: Any | None = None,
    method: str = DEFAULT_METHOD,
    k: int = 3,
    margin_scale: float = FACE_CROP_SCALE,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[EnrollReport], list[tuple[Path, str]]]:
    """Enrol everyone in ``root/<person>/<image>`` (one transaction per person).

    Returns:
        ``(reports, problems)``: one :class:`EnrollReport` per person enrolled, and ``(path, reason)`` for
        every file skipped and every person folder that could not be enrolled (empty, bad name, no usable
        image). Raises only for a wrong embedder or an unusable ``root``.
    """
    check_gallery_embedder(gallery, embedder_tag(embedder))  # a wrong embedder would fail every person
    reports: list[EnrollReport] = []
    problems: list[tuple[Path, str]] = []
    for person, files in person_folders(root):
        folder = Path(root) / person
        if not files:
            problems.append((folder, "no images in this folder"))
            continue
        try:
            rep = enroll_files(gallery, person, files, embedder, detector, method, k, margin_scale, progress)
        except GalleryError as e:
            problems.append((folder, str(e)))
            continue
        reports.append(rep)
        problems.extend(rep.skipped)
    return reports, problems


def count_images(root: str | Path) -> int:
    """Number of images in the person folders of ``root`` (for a progress bar)."""
    return sum(len(files) for _, files in person_folders(root))


# ---------------------------------------------------------------------------------------------- rebuild
@dataclass
class RebuildReport:
    """What :func:`rebuild_embeddings` did.

    Attributes:
        tag: the new embedder tag.
        written: embeddings written (0 when nothing could be written).
        missing: ``(stored path, reason)`` for images whose file vanished, changed or cannot be read.
        without_box: images enrolled without a recorded crop box (re-cropped as whole-image crops).
    """

    tag: str
    written: int = 0
    missing: list[tuple[str, str]] = field(default_factory=list)
    without_box: int = 0


def rebuild_embeddings(gallery: Gallery, embedder: Embedder,
                       progress: Callable[[int], None] | None = None) -> RebuildReport:
    """Re-embed every enrolled picture with another embedder, all or nothing.

    Each stored path is read again, its SHA-256 checked against the enrolled one, cropped with the box
    recorded at enrolment (or as a whole-image crop when none was recorded) at the new embedder's input
    size and crop convention (aligned from the recorded landmarks when it was trained on aligned faces), and
    embedded. If any picture is missing, changed or unreadable, nothing is written and the
    report lists them; otherwise the embeddings and prototypes are written in one transaction
    (:meth:`Gallery.replace_embeddings`).
    """
    tag = embedder_tag(embedder)
    report = RebuildReport(tag=tag)
    size = int(embedder.input_size)
    ids: list[int] = []
    crops: list[np.ndarray] = []
    for rec in gallery.images():
        try:
            p = Path(rec.path)
            if not p.is_file():
                raise ImageError(p, "file no longer exists")
            if sha256_file(p) != rec.sha256:
                raise ImageError(p, "file content changed since it was enrolled")
            img = load_image(p)
            info = gallery.get_meta(SOURCE_META_PREFIX + rec.sha256) or {}
            box = info.get("box")
            if box is None:
                report.without_box += 1 if not info else 0
                crops.append(whole_image_crop(img, size))
            else:
                lm = info.get("landmarks")
                lm = None if lm is None else np.asarray(lm, dtype=np.float64)[None]
                crops.append(embedder_crops(embedder, img, np.asarray([box], dtype=np.float64), lm,
                                            float(info.get("margin", FACE_CROP_SCALE)))[0])
            ids.append(rec.id)
        except (ImageError, GalleryError) as e:
            report.missing.append((rec.path, getattr(e, "reason", str(e))))
        if progress is not None:
            progress(1)
    if report.missing:
        return report
    if not ids:
        raise GalleryError(f"gallery {gallery.path} has no images to rebuild; {ENROLL_HINT}")
    vecs = embedder.embed(crops_to_batch(crops), batch_size=64)
    report.written = gallery.replace_embeddings(tag, dict(zip(ids, vecs)))
    gallery.record_embedder_source(tag, getattr(embedder, "source", None))
    return report
