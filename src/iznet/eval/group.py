"""End-to-end accuracy of the whole system on a group of people.

The question a user asks: *if I enrol a few photos of each person, how often does ``iznet label`` name the
others right?* :func:`evaluate_group` answers it by running the real pipeline, image by image:

1. the folder ``ROOT/<person>/<image>`` is split per person: the first ``enroll`` images in name order are
   enrolled, the rest are probes (:func:`split_group`);
2. every enrolment image goes through the pipeline's own detector and :meth:`embed_boxes` (the most
   confident face is kept, as ``iznet enroll`` does) into an empty gallery, one transaction per person;
3. every probe goes through :meth:`Pipeline.label` (detect -> crop -> embed -> match), and the most
   confident face's answer is scored as one of :data:`OUTCOMES`:

   * ``correct``: named as its person;
   * ``wrong``: named as somebody else;
   * ``unknown``: a face was found but its distance is above the unknown-face threshold;
   * ``no_face``: the detector found no face.

The four shares add up to 1. Beside them the report gives ``nearest_correct``: the share of probes whose
*nearest* person is right whatever the threshold (closed-set rank-1 over probes with a face).

Any object shaped like :class:`iznet.recognize.pipeline.Pipeline` works (see :class:`GroupPipeline`), so the
same code measures iznet's models and a reference such as :mod:`iznet.reference.dlib_ref`.

Face datasets of tight crops (e.g. 112x112 aligned faces) hold a face that fills the whole picture, which a
detector trained on photos rarely finds. Two ways around it, both provided here:

* :class:`PaddedDetector` puts the picture in the middle of a black canvas ``pad`` times its size before
  detecting and maps the boxes back (the crop is then cut from the original picture, black outside it, which
  is exactly what cutting it from the canvas would give);
* :class:`WholeImageDetector` skips detection: the centre square of the picture is the face (use it with
  ``Pipeline(margin_scale=1.0)``, which makes the crop the same as ``iznet enroll --no-detect``).

With ``group_photos`` (:class:`GroupPhotos`) the probes are labelled nine to a grey "group photo" instead of
one by one, each scored by the face found in its own picture: the faces are as sharp as before but small in
the detector's view, as in a photo of a crowd.

Example:
    >>> with Gallery(tmp / "g.db") as g:                                          # doctest: +SKIP
    ...     pipe = Pipeline(PaddedDetector(load_detector()), load_embedder(), g, threshold=0.08)
    ...     report = evaluate_group(pipe, "../shared/data/glint24/images", enroll=5)
    >>> report.shares()                                                            # doctest: +SKIP
    {'correct': 0.2, 'wrong': 0.1, 'unknown': 0.66, 'no_face': 0.04, 'nearest_correct': 0.4, 'n': 2548}
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np

from iznet.data.images import load_image
from iznet.detect.results import Detections
from iznet.errors import DataError, GalleryError, ImageError, ModelError

OUTCOMES = ("correct", "wrong", "unknown", "no_face")
"""What can happen to a probe image, in report order."""


# ---------------------------------------------------------------------------------------------- detectors
class WholeImageDetector:
    """A "detector" that answers the centre square of every picture (detection bypassed: the crop is the face).

    With ``Pipeline(margin_scale=1.0)`` the pipeline's crop is then the centre square resized to the
    embedder's input, the same as :func:`iznet.recognize.pipeline.whole_image_crop` (``--no-detect``).
    """

    name = "whole-image"

    def detect(self, image: np.ndarray) -> Detections:
        """One box, the centre square of ``image`` (H, W, 3), with score 1."""
        h, w = image.shape[:2]
        side = min(h, w)
        x0, y0 = (w - side) / 2, (h - side) / 2
        return Detections(np.array([[x0, y0, x0 + side, y0 + side]], np.float32), np.ones(1, np.float32), (w, h))


class PaddedDetector:
    """Detect on the picture placed in the middle of a black canvas ``pad`` times its size.

    A face crop (the face fills the picture) looks to a detector like a face cut off at every edge; with
    some black around it, it looks like a face in a photo. Boxes are mapped back to the picture's pixels
    (they may reach outside it; the pipeline's crop fills that part with black, as the canvas would).

    Args:
        detector: any detector (``.detect(image) -> Detections`` or a callable).
        pad: canvas side / picture side (>= 1; 1 means no padding).

    Shapes:
        image (H, W, 3) uint8 -> canvas (round(pad * H), round(pad * W), 3).
    """

    def __init__(self, detector: Any, pad: float = 2.0):
        if not pad >= 1.0:
            raise ModelError(f"pad must be >= 1 (canvas side / picture side), got {pad}")
        self.detector = detector
        self.pad = float(pad)
        self.name = f"{getattr(detector, 'name', type(detector).__name__)}+pad{self.pad:g}"

    def detect(self, image: np.ndarray) -> Detections:
        """Faces in ``image`` (boxes and, when the detector gives them, landmarks in its pixels), found on the
        padded canvas."""
        from iznet.recognize.faces import detect_faces_on_canvas

        boxes, scores, points = detect_faces_on_canvas(self.detector, image, self.pad)
        return Detections(boxes.astype(np.float32), scores.astype(np.float32), (image.shape[1], image.shape[0]),
                          None if points is None else points.astype(np.float32))


def bundled_threshold() -> float:
    """The unknown-face threshold calibrated for the bundled embedder (``calibration.threshold`` in
    ``iznet/assets/assets.json``, written by ``scripts/make_assets.py``; the one the demo gallery stores).

    Raises:
        ModelError: no calibration is bundled.
    """
    import json

    from iznet.utils.assets import ASSETS_DIR

    path = ASSETS_DIR / "assets.json"
    try:
        return float(json.loads(path.read_text())["calibration"]["threshold"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"no calibrated threshold for the bundled embedder in {path} ({e}); pass a distance") from None


# ---------------------------------------------------------------------------------------------- the split
@dataclass(frozen=True)
class PersonSplit:
    """One person's pictures: the first ``enroll`` (name order) are enrolled, the rest are probes."""

    person: str
    enroll: list[Path]
    probes: list[Path]


def group_root(root: str | Path) -> Path:
    """The folder holding the person folders: ``root`` itself, or ``root/images`` when ``root`` holds nothing
    but an ``images`` folder (the layout of ``../shared/data/glint24``)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; expected ROOT/<person>/<image>")
    subs = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
    if len(subs) == 1 and subs[0].name == "images":
        return subs[0]
    return root


def split_group(root: str | Path, enroll: int = 5, max_probes: int | None = None) -> list[PersonSplit]:
    """Split ``root/<person>/<image>`` into enrolment images and probes, per person sorted by name.

    Args:
        root: the group folder (or its parent holding only ``images/``; see :func:`group_root`).
        enroll: images enrolled per person (the first ones in name order).
        max_probes: at most this many probes per person (the first ones after the enrolled); None: all.

    Raises:
        DataError: ``root`` is not a folder or has no person folders, ``enroll < 1``, or some person has no
            more than ``enroll`` images (all of them are named, with their counts).
    """
    from iznet.recognize.enrol import person_folders

    if enroll < 1:
        raise DataError(f"enroll must be at least 1 image per person, got {enroll}")
    if max_probes is not None and max_probes < 1:
        raise DataError(f"max_probes must be at least 1 (or None for all), got {max_probes}")
    root = group_root(root)
    folders = person_folders(root)
    short = [(p, len(files)) for p, files in folders if len(files) <= enroll]
    if short:
        listed = ", ".join(f"{p} ({n})" for p, n in short[:10]) + (" ..." if len(short) > 10 else "")
        raise DataError(
            f"{len(short)} person folder(s) in {root} have {enroll} image(s) or fewer, so nothing is left to label"
            f" after enrolling {enroll}: {listed}; lower --enroll or remove those folders"
        )
    out = []
    for person, files in folders:
        probes = files[enroll:] if max_probes is None else files[enroll:enroll + max_probes]
        out.append(PersonSplit(person, files[:enroll], probes))
    return out


# ---------------------------------------------------------------------------------------------- the report
@dataclass(frozen=True)
class ProbeOutcome:
    """What the system answered for one probe picture.

    Attributes:
        path: the picture.
        person: who it shows (its folder).
        outcome: one of :data:`OUTCOMES`.
        answer: the name given (``"unknown"`` too); None when no face was found.
        nearest: the nearest person whatever the threshold; None when no face was found or the gallery is empty.
        distance: distance to ``nearest``.
        n_faces: faces the detector found (the most confident one is scored).
    """

    path: str
    person: str
    outcome: str
    answer: str | None
    nearest: str | None
    distance: float | None
    n_faces: int

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["distance"] = None if self.distance is None else round(float(self.distance), 4)
        return d


@dataclass
class GroupReport:
    """The result of :func:`evaluate_group`.

    Attributes:
        root: the group folder.
        enroll: images enrolled per person (asked for).
        people: every person folder, sorted.
        enrolled: images actually enrolled per person (0: nobody of that name is in the gallery).
        enroll_skipped: ``(file, reason)`` for enrolment pictures that could not be used (no face, unreadable).
        probe_skipped: ``(file, reason)`` for probe pictures that could not be read (not scored).
        outcomes: one :class:`ProbeOutcome` per scored probe.
        settings: what was measured (pipeline, detector, embedder tag, threshold, method...).
        seconds: wall time of enrolment and of labelling (``*_cpu``: CPU time of this process, which on a shared
            machine does not count the time spent waiting for a core).
    """

    root: str
    enroll: int
    people: list[str]
    enrolled: dict[str, int]
    enroll_skipped: list[tuple[str, str]] = field(default_factory=list)
    probe_skipped: list[tuple[str, str]] = field(default_factory=list)
    outcomes: list[ProbeOutcome] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def _select(self, people: Iterable[str] | None) -> list[ProbeOutcome]:
        if people is None:
            return self.outcomes
        wanted = set(people)
        unknown = wanted - set(self.people)
        if unknown:
            raise DataError(f"not people of this group: {', '.join(sorted(unknown))}")
        return [o for o in self.outcomes if o.person in wanted]

    def counts(self, people: Iterable[str] | None = None) -> dict[str, int]:
        """Probes per outcome (and ``n``, ``nearest_correct``), over everyone or over ``people``."""
        sel = self._select(people)
        c = {k: 0 for k in OUTCOMES}
        for o in sel:
            c[o.outcome] += 1
        c["nearest_correct"] = sum(o.nearest == o.person for o in sel)
        c["n"] = len(sel)
        return c

    def shares(self, people: Iterable[str] | None = None) -> dict[str, float]:
        """Share of probes per outcome (they add up to 1), ``nearest_correct`` (share of all probes whose
        nearest person is right) and ``n``. Shares are NaN when there is no probe."""
        c = self.counts(people)
        n = c["n"]
        out: dict[str, float] = {k: (c[k] / n if n else float("nan")) for k in (*OUTCOMES, "nearest_correct")}
        out["n"] = n
        return out

    def per_person(self) -> dict[str, dict[str, Any]]:
        """For each person: images enrolled and probe counts per outcome."""
        return {p: {"enrolled": self.enrolled.get(p, 0), **self.counts([p])} for p in self.people}

    def to_json(self, with_outcomes: bool = True) -> dict[str, Any]:
        """JSON-ready dict: settings, totals, shares, per-person counts and (optionally) every probe's outcome."""
        d: dict[str, Any] = {
            "root": self.root,
            "enroll": self.enroll,
            "settings": self.settings,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "counts": self.counts(),
            "shares": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.shares().items()},
            "people": self.per_person(),
            "enroll_skipped": [list(x) for x in self.enroll_skipped],
            "probe_skipped": [list(x) for x in self.probe_skipped],
        }
        if with_outcomes:
            d["outcomes"] = [o.to_dict() for o in self.outcomes]
        return d


# ---------------------------------------------------------------------------------------------- evaluation
class GroupPipeline(Protocol):
    """What :func:`evaluate_group` needs: the attributes and methods of
    :class:`iznet.recognize.pipeline.Pipeline` it uses."""

    detector: Any
    tag: str
    prototype_method: str
    k: int
    gallery: Any
    threshold: float | None

    def embed_boxes(self, image: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """(N, D) embeddings of the faces at ``boxes`` (N, 4), with their (N, 5, 2) landmarks when known."""
        ...

    def reload(self) -> None:
        """Re-read the gallery."""
        ...

    def label(self, image: np.ndarray, source: str | Path | None = None) -> Any:
        """A :class:`~iznet.recognize.pipeline.LabelResult`."""
        ...


def enroll_with_pipeline(pipeline: GroupPipeline, person: str, paths: Sequence[Path]
                         ) -> tuple[str | None, int, list[tuple[str, str]]]:
    """Enrol pictures of one person through the pipeline's own detector and :meth:`embed_boxes`.

    The most confident face of each picture is kept. For :class:`~iznet.recognize.pipeline.Pipeline` this
    gives the same vectors as :func:`~iznet.recognize.pipeline.enroll_files` with the same detector and
    crop scale; it also works for pipelines that embed from the whole photo (e.g. dlib's aligner).

    Returns:
        ``(stored name or None when nothing could be enrolled, images enrolled, [(file, reason) skipped])``.
    """
    from iznet.recognize.gallery import sha256_file
    from iznet.recognize.faces import detect_faces_with_landmarks

    items: list[tuple[str, str, np.ndarray]] = []
    skipped: list[tuple[str, str]] = []
    for p in paths:
        try:
            img = load_image(p)
        except ImageError as e:
            skipped.append((str(p), e.reason))
            continue
        boxes, _, points = detect_faces_with_landmarks(pipeline.detector, img)
        if len(boxes) == 0:
            skipped.append((str(p), "no face found"))
            continue
        vec = np.asarray(pipeline.embed_boxes(img, boxes[:1], None if points is None else points[:1]))[0]
        items.append((str(Path(p).resolve()), sha256_file(p), vec))
    if not items:
        return None, 0, skipped
    res = pipeline.gallery.enroll(person, items, embedder_tag=pipeline.tag, method=pipeline.prototype_method,
                                  k=pipeline.k)
    return res.name, len(res.added), skipped


@dataclass(frozen=True)
class GroupPhotos:
    """Probes labelled several to a photo, as in a group photo (:func:`evaluate_group`).

    Each probe picture is resized so that its longer side is ``side`` pixels and pasted at a random place
    (seeded) inside its own cell of a grey photo of ``per_side`` × ``per_side`` cells, each ``spread`` ×
    ``side`` pixels; probes of different people share a photo (their order is shuffled). The photo is labelled
    as it is (a padding detector used for the enrolment crops is bypassed), and each probe is scored by the face
    whose centre lies in its picture, nearest the picture's centre. A bigger ``spread`` makes the faces
    smaller in a detector's view (which reads the whole photo at a fixed size), not in the photo's pixels.
    """

    spread: float = 4.0
    per_side: int = 3
    side: int = 112
    seed: int = 0
    background: int = 118

    def __post_init__(self) -> None:
        if not float(self.spread) >= 1.0:
            raise DataError(f"group photos: spread must be at least 1 (cell side / picture side), got {self.spread}")
        if int(self.per_side) < 1 or int(self.side) < 16:
            raise DataError(f"group photos: need per_side >= 1 and side >= 16, got {self.per_side} and {self.side}")


def compose_group_photo(pictures: Sequence[np.ndarray], cfg: GroupPhotos, rng: np.random.Generator
                        ) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A grey photo with ``pictures`` (at most ``per_side**2``, row by row) resized to ``cfg.side`` and placed at
    random inside their cells; returns the photo and each picture's ``(x0, y0, x1, y1)`` in it."""
    import cv2

    if len(pictures) > cfg.per_side ** 2:
        raise ValueError(f"{len(pictures)} pictures do not fit {cfg.per_side}x{cfg.per_side} cells")
    cell = int(round(cfg.spread * cfg.side))
    photo = np.full((cfg.per_side * cell, cfg.per_side * cell, 3), cfg.background, np.uint8)
    rects = []
    for j, pic in enumerate(pictures):
        h, w = pic.shape[:2]
        f = cfg.side / max(h, w)
        nw, nh = max(1, int(round(w * f))), max(1, int(round(h * f)))
        if (nw, nh) != (w, h):
            pic = cv2.resize(pic, (nw, nh), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        x0 = (j % cfg.per_side) * cell + int(rng.integers(0, cell - nw + 1))
        y0 = (j // cfg.per_side) * cell + int(rng.integers(0, cell - nh + 1))
        photo[y0:y0 + nh, x0:x0 + nw] = pic
        rects.append((x0, y0, x0 + nw, y0 + nh))
    return photo, rects


def face_in(faces: Sequence[Any], rect: tuple[int, int, int, int]) -> tuple[Any | None, int]:
    """The face (``.box``) whose centre lies in ``rect`` nearest its centre, and how many faces lie in it."""
    x0, y0, x1, y1 = rect
    inside = []
    for f in faces:
        cx, cy = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2
        if x0 <= cx < x1 and y0 <= cy < y1:
            inside.append(((cx - (x0 + x1) / 2) ** 2 + (cy - (y0 + y1) / 2) ** 2, f))
    if not inside:
        return None, 0
    return min(inside, key=lambda t: t[0])[1], len(inside)


def evaluate_group(
    pipeline: GroupPipeline,
    root: str | Path,
    enroll: int = 5,
    max_probes: int | None = None,
    progress: Callable[[int], None] | None = None,
    settings: dict[str, Any] | None = None,
    group_photos: GroupPhotos | None = None,
) -> GroupReport:
    """Enrol the first ``enroll`` pictures of every person through ``pipeline``, label the others, score them.

    Args:
        pipeline: a :class:`~iznet.recognize.pipeline.Pipeline` (or look-alike, :class:`GroupPipeline`) whose
            ``gallery`` is an open, writable and empty :class:`~iznet.recognize.gallery.Gallery`. It is filled
            (so it can be reused afterwards, e.g. to time labelling) and the pipeline reloaded.
        root: ``ROOT/<person>/<image>`` (see :func:`split_group`).
        enroll: pictures enrolled per person.
        max_probes: at most this many probes per person (None: all).
        progress: called with 1 per picture handled (enrolment and probes).
        settings: extra entries for :attr:`GroupReport.settings`.
        group_photos: label the probes several to a photo (:class:`GroupPhotos`) instead of one by one.

    Returns:
        A :class:`GroupReport`.

    Raises:
        DataError: see :func:`split_group`. GalleryError: the gallery is not an open Gallery, or not empty,
            or nobody could be enrolled.
    """
    from iznet.recognize.gallery import Gallery, validate_name

    gallery = getattr(pipeline, "gallery", None)
    if not isinstance(gallery, Gallery):
        raise GalleryError("evaluate_group needs a pipeline built on an open Gallery object (not a path), "
                           "e.g. Pipeline(det, emb, Gallery(tmp / 'g.db'), ...)")
    if len(gallery):
        raise GalleryError(f"gallery {gallery.path} already holds {len(gallery)} people; the group evaluation "
                           "enrols into an empty gallery: give a new file")
    splits = split_group(root, enroll, max_probes)
    report = GroupReport(root=str(group_root(root)), enroll=int(enroll), people=[s.person for s in splits],
                         enrolled={})
    stored: dict[str, str] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    seen: dict[str, str] = {}
    for s in splits:  # folder names the gallery refuses or merges are the user's to fix: say so before the run
        key = validate_name(s.person).lower()
        if key in seen:
            raise DataError(f"folders {seen[key]!r} and {s.person!r} in {report.root} are one person to the gallery"
                            " (names compare case-insensitively); rename one")
        seen[key] = s.person
    for s in splits:
        name, n, skipped = enroll_with_pipeline(pipeline, s.person, s.enroll)
        report.enrolled[s.person] = n
        report.enroll_skipped.extend(skipped)
        if name is not None:
            stored[s.person] = name
        if progress is not None:
            progress(len(s.enroll))
    if not stored:
        why = "; ".join(f"{Path(p).name}: {r}" for p, r in report.enroll_skipped[:3])
        raise GalleryError(f"nobody could be enrolled from {report.root} ({why}); check the detector (for tight "
                           "face crops pad the pictures or bypass detection)")
    pipeline.reload()
    folder_of = {v: k for k, v in stored.items()}  # gallery name -> folder name (they differ only by normalisation)
    t1, c1 = time.perf_counter(), time.process_time()

    def outcome(path: Path, person: str, f: Any, n_faces: int) -> ProbeOutcome:
        if f is None:
            return ProbeOutcome(str(path), person, "no_face", None, None, None, n_faces)
        answer = folder_of.get(f.name, f.name)
        nearest = None if f.nearest is None else folder_of.get(f.nearest, f.nearest)
        kind = "unknown" if not f.known else ("correct" if answer == person else "wrong")
        return ProbeOutcome(str(path), person, kind, answer, nearest, f.distance, n_faces)

    if group_photos is None:
        for s in splits:
            for p in s.probes:
                try:
                    img = load_image(p)
                except ImageError as e:
                    report.probe_skipped.append((str(p), e.reason))
                    if progress is not None:
                        progress(1)
                    continue
                faces = pipeline.label(img, source=p).faces
                report.outcomes.append(outcome(p, s.person, faces[0] if faces else None, len(faces)))
                if progress is not None:
                    progress(1)
    else:
        _label_group_photos(pipeline, splits, group_photos, report, outcome, progress)
    t2, c2 = time.perf_counter(), time.process_time()
    n_probes = max(1, len(report.outcomes))
    report.seconds = {"enroll": t1 - t0, "label": t2 - t1, "label_per_image": (t2 - t1) / n_probes,
                      "enroll_cpu": c1 - c0, "label_cpu": c2 - c1, "label_cpu_per_image": (c2 - c1) / n_probes}
    report.settings = {
        "pipeline": type(pipeline).__name__,
        "detector": getattr(pipeline.detector, "name", type(pipeline.detector).__name__),
        "embedder": pipeline.tag,
        "threshold": pipeline.threshold,
        "prototype_method": pipeline.prototype_method,
        "margin_scale": getattr(pipeline, "margin_scale", None),
        "max_probes": max_probes,
        **({"group_photos": dict(group_photos.__dict__)} if group_photos is not None else {}),
        **(settings or {}),
    }
    return report


def _label_group_photos(pipeline: GroupPipeline, splits: list[PersonSplit], cfg: GroupPhotos, report: GroupReport,
                        outcome: Callable[..., ProbeOutcome], progress: Callable[[int], None] | None) -> None:
    """The probes of ``splits``, shuffled, labelled ``cfg.per_side**2`` to a photo (see :class:`GroupPhotos`)."""
    rng = np.random.default_rng(cfg.seed)
    probes = [(p, s.person) for s in splits for p in s.probes]
    order = rng.permutation(len(probes))
    per_photo = cfg.per_side ** 2
    padded = pipeline.detector
    if isinstance(padded, PaddedDetector):  # the enrolment crops were padded; a group photo is a photo
        pipeline.detector = padded.detector
    try:
        batch: list[tuple[Path, str, np.ndarray]] = []
        for n, i in enumerate(order):
            p, person = probes[i]
            try:
                batch.append((p, person, load_image(p)))
            except ImageError as e:
                report.probe_skipped.append((str(p), e.reason))
                if progress is not None:
                    progress(1)
            if len(batch) == per_photo or (n == len(order) - 1 and batch):
                photo, rects = compose_group_photo([b[2] for b in batch], cfg, rng)
                faces = pipeline.label(photo).faces
                for (path, who, _), rect in zip(batch, rects):
                    report.outcomes.append(outcome(path, who, *face_in(faces, rect)))
                if progress is not None:
                    progress(len(batch))
                batch = []
    finally:
        pipeline.detector = padded


__all__ = [
    "GroupPhotos", "GroupPipeline", "GroupReport", "OUTCOMES", "PaddedDetector", "PersonSplit", "ProbeOutcome",
    "WholeImageDetector", "bundled_threshold", "compose_group_photo", "enroll_with_pipeline", "evaluate_group",
    "face_in", "group_root", "split_group",
]
