"""The web service's work without HTTP: check uploads, label photos, enrol, rename and remove people.

:class:`RecognitionService` wraps one :class:`~iznet.recognize.pipeline.Pipeline` and its
:class:`~iznet.recognize.gallery.Gallery` for many threads at once (FastAPI runs the endpoints in a
threadpool):

* an upload is trusted for nothing: its bytes are sniffed with PIL (magic bytes, not the file name or the
  content type), its pixel count is checked from the header before it is decoded (decompression bombs),
  and only then decoded (:func:`iznet.data.images.load_image_bytes`);
* model inference runs under one lock (OpenCV's cascade and a network are not assumed thread-safe; on a
  CPU two inferences at once would not be faster anyway); at most ``decode_slots`` uploads are decoded at
  the same time, which bounds the memory a burst of large photos takes;
* gallery writes go through one writer lock (SQLite has one writer; the lock makes "does this name exist,
  then enrol" one step);
* an enrolled upload is kept as ``<images dir>/<sha256>.<ext>`` beside the gallery (:func:`images_dir_for`),
  which is the path the gallery stores, so ``iznet gallery rebuild`` can re-read it. Files are written
  just before the gallery transaction; afterwards every file this call wrote that the gallery does not
  reference (the transaction failed, no face, a duplicate) is deleted again, so a failed enrolment leaves
  neither rows nor files behind.

Every refusal is a :class:`ServeError` carrying the HTTP status the service answers with.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import logging
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from iznet.errors import GalleryError, ImageError, IznetError
from iznet.recognize.prototypes import DEFAULT_METHOD

_logger = logging.getLogger(__name__)

#: Formats accepted for uploads (PIL format name -> file suffix used when an upload is stored).
UPLOAD_FORMATS: dict[str, str] = {
    "JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif", "PPM": ".ppm",
}
IMAGE_MODES = ("labelled", "plain", "none")
"""What :meth:`RecognitionService.label` sends back as a picture: the photo with boxes and names drawn,
the photo alone (upright, EXIF orientation applied), or nothing."""


class ServeError(IznetError):
    """A request the service refuses, with the HTTP status it answers.

    Attributes:
        status: 400 bad input, 404 unknown person, 409 conflict, 413 too large, 415 not an image,
            422 an image that cannot be used, 503 busy.
    """

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = int(status)


@dataclass(frozen=True)
class ServeSettings:
    """What ``iznet serve`` runs with (and what tests change).

    Attributes:
        gallery: the gallery file (None: :func:`~iznet.recognize.pipeline.default_gallery_path`).
        embedder: ``--embedder`` spec (None: the bundled model).
        detector: ``--detector`` spec (None: the bundled model).
        threshold: ``"stored"``, None or a distance (see :class:`~iznet.recognize.pipeline.Pipeline`).
        prototype_method: prototypes used for matching and stored when enrolling.
        max_upload_bytes: largest request body accepted (all files of one request together).
        max_pixels: largest image accepted, in pixels (width x height), checked before decoding.
        max_files: most photos in one enrolment request.
        preview_max_side: the picture sent back is scaled down to at most this many pixels a side.
        jpeg_quality: JPEG quality of that picture.
        decode_slots: uploads decoded at the same time.
        label_font: TrueType font for the names drawn on the picture (None: matplotlib's DejaVu Sans,
            which covers Latin, Greek and Cyrillic; PIL's default font, the fallback, is ASCII-only).
        token: when set, requests that change the gallery must carry it (``Authorization: Bearer TOKEN`` or
            ``X-Iznet-Token``), for a service reachable beyond this machine.
    """

    gallery: Path | None = None
    embedder: str | None = None
    detector: str | None = None
    threshold: float | str | None = "stored"
    prototype_method: str = DEFAULT_METHOD
    max_upload_bytes: int = 16 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_files: int = 20
    preview_max_side: int = 1600
    jpeg_quality: int = 88
    decode_slots: int = 2
    label_font: str | None = None
    token: str | None = None

    def __post_init__(self) -> None:
        for key in ("max_upload_bytes", "max_pixels", "max_files", "preview_max_side", "decode_slots"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ServeError(f"serve setting {key} must be a positive integer, got {v!r}", status=500)
        if not 1 <= int(self.jpeg_quality) <= 95:
            raise ServeError(f"serve setting jpeg_quality must be in 1..95, got {self.jpeg_quality!r}", status=500)


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the name the client gave it (for messages only, never for storage) and its bytes."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class CheckedUpload:
    """An upload that passed :func:`check_upload`.

    Attributes:
        filename: the client's name for it (cleaned).
        data: its bytes.
        format: PIL format name (a key of :data:`UPLOAD_FORMATS`).
        size: ``(width, height)`` from the header.
        image: the decoded uint8 (H, W, 3) RGB array.
    """

    filename: str
    data: bytes
    format: str
    size: tuple[int, int]
    image: np.ndarray = field(repr=False)

    @property
    def sha256(self) -> str:
        from iznet.recognize.gallery import sha256_bytes

        return sha256_bytes(self.data)

    @property
    def suffix(self) -> str:
        return UPLOAD_FORMATS[self.format]


@dataclass
class LabelOutcome:
    """What :meth:`RecognitionService.label` returns.

    Attributes:
        result: the :class:`~iznet.recognize.pipeline.LabelResult` (boxes in pixels of the original photo).
        image_jpeg: the picture sent back (JPEG bytes) or None (``image="none"``).
        preview_size: ``(width, height)`` of that picture (None without one).
    """

    result: Any
    image_jpeg: bytes | None = None
    preview_size: tuple[int, int] | None = None

    def image_base64(self) -> str | None:
        return None if self.image_jpeg is None else base64.b64encode(self.image_jpeg).decode("ascii")


@dataclass
class EnrollOutcome:
    """What an enrolment did, with every file named as the client named it.

    Attributes:
        name: the person's stored name.
        created: the person is new.
        added: files enrolled.
        duplicates: files the person already had (same content), or repeated in this request.
        skipped: ``(file, reason)`` for files not enrolled (no face).
        several_faces: ``(file, n)`` for photos with n > 1 faces, where the most confident was kept.
        headshots: files whose face only the headshot fallback found (check them).
    """

    name: str
    created: bool
    added: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    several_faces: list[tuple[str, int]] = field(default_factory=list)
    headshots: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- uploads
def clean_filename(name: str | None) -> str:
    """The last component of a client-supplied file name, printable characters only, at most 100 of them."""
    base = str(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable()).strip()[:100]
    return base or "upload"


def sniff_image(data: bytes, filename: str, max_pixels: int) -> tuple[str, tuple[int, int]]:
    """Identify an upload from its bytes and check its size from the header, without decoding it.

    Returns:
        ``(format, (width, height))``.

    Raises:
        ServeError: 400 empty; 415 not an image or a format not accepted; 413 more than ``max_pixels``
            pixels (a decompression bomb included); 422 an image header that cannot be parsed.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ServeError(f"{filename} is empty (0 bytes)", status=400)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                fmt, (w, h) = im.format, im.size
    except UnidentifiedImageError:
        raise ServeError(
            f"{filename} is not an image (its content is not {', '.join(UPLOAD_FORMATS)}, whatever its name says)",
            status=415,
        ) from None
    except Image.DecompressionBombError as e:
        raise ServeError(f"{filename} is too large to decode, refused as a possible decompression bomb ({e})",
                         status=413) from None
    except Exception as e:  # PIL raises OSError, SyntaxError, struct.error, ... on a mangled header
        raise ServeError(f"{filename}: cannot parse the image header ({type(e).__name__}: {e})", status=422) from None
    if fmt not in UPLOAD_FORMATS:
        raise ServeError(f"{filename} is a {fmt} image; send one of {', '.join(UPLOAD_FORMATS)}", status=415)
    if w * h > max_pixels:
        raise ServeError(f"{filename} is {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,};"
                         " send a smaller photo", status=413)
    return fmt, (int(w), int(h))


def check_upload(upload: Upload, max_pixels: int) -> CheckedUpload:
    """Sniff, size-check and decode an upload (see :func:`sniff_image`); 422 when the data is corrupt."""
    from iznet.data.images import load_image_bytes

    name = clean_filename(upload.filename)
    fmt, size = sniff_image(upload.data, name, max_pixels)
    try:
        image = load_image_bytes(upload.data, name=name, max_pixels=max_pixels)
    except ImageError as e:
        raise ServeError(f"cannot read image {name}: {e.reason}", status=422) from None
    return CheckedUpload(filename=name, data=upload.data, format=fmt, size=size, image=image)


def images_dir_for(gallery_path: str | Path) -> Path:
    """Folder where the service keeps enrolled uploads: ``<gallery stem>_images`` beside the gallery file."""
    p = Path(gallery_path)
    return p.with_name(f"{p.stem}_images")


def default_label_font() -> str | None:
    """matplotlib's DejaVu Sans (matplotlib is a dependency), or None when it cannot be found."""
    try:
        import matplotlib
    except ImportError:
        return None
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return str(path) if path.is_file() else None


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """uint8 (H, W, 3) RGB -> JPEG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def scaled_down(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``image`` scaled so its longer side is at most ``max_side`` (never up); returns it and the factor."""
    from PIL import Image

    h, w = image.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s >= 1.0:
        return image, 1.0
    size = (max(1, round(w * s)), max(1, round(h * s)))
    small = Image.fromarray(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(small), s


# ---------------------------------------------------------------------------------------------- service
class RecognitionService:
    """Label photos and manage the people of one gallery, safely from many threads.

    Args:
        pipeline: a :class:`~iznet.recognize.pipeline.Pipeline` whose ``gallery`` is ``gallery``.
        gallery: the open gallery (owned by the service: :meth:`close` closes it).
        settings: limits and options.
        images_dir: where enrolled uploads are kept (default: :func:`images_dir_for` the gallery).
    """

    def __init__(self, pipeline: Any, gallery: Any, settings: ServeSettings, images_dir: Path | None = None):
        self.pipeline = pipeline
        self.gallery = gallery
        self.settings = settings
        self.images_dir = Path(images_dir) if images_dir is not None else images_dir_for(gallery.path)
        self._infer_lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._decode_slots = threading.BoundedSemaphore(settings.decode_slots)
        self._stamp = self._gallery_stamp()
        self.label_font = settings.label_font or default_label_font()
        self.swept = self.sweep_orphans()

    @classmethod
    def from_settings(cls, settings: ServeSettings | None = None, *, detector: Any = None,
                      embedder: Any = None) -> RecognitionService:
        """Load the models named in ``settings`` (or take the objects given) and open the gallery.

        Raises:
            ModelError: a model cannot be loaded. GalleryError: the gallery cannot be opened or holds
            embeddings of another embedder.
        """
        from iznet.recognize.gallery import Gallery
        from iznet.loading import load_detector, load_embedder
        from iznet.recognize.pipeline import Pipeline, default_gallery_path

        settings = settings or ServeSettings()
        emb = embedder if embedder is not None else load_embedder(spec=settings.embedder)
        det = detector if detector is not None else load_detector(spec=settings.detector)
        gallery = Gallery(default_gallery_path(settings.gallery), create=True)
        try:
            pipe = Pipeline(det, emb, gallery, prototype_method=settings.prototype_method,
                            threshold=settings.threshold)
        except BaseException:
            gallery.close()
            raise
        return cls(pipe, gallery, settings)

    def close(self) -> None:
        """Close the gallery."""
        self.gallery.close()

    # ------------------------------------------------------------------ reading
    @property
    def detector_name(self) -> str:
        det = self.pipeline.detector
        return str(getattr(det, "name", type(det).__name__))

    def check(self, upload: Upload) -> CheckedUpload:
        """:func:`check_upload` with the service's pixel limit, at most ``decode_slots`` at a time."""
        with self._decode_slots:
            return check_upload(upload, self.settings.max_pixels)

    def label(self, upload: Upload, image: str = "labelled") -> LabelOutcome:
        """Find and name the faces of an uploaded photo.

        Args:
            upload: the photo.
            image: one of :data:`IMAGE_MODES`: the picture to send back.

        Raises:
            ServeError: a bad upload (see :func:`sniff_image`) or a bad ``image`` value (400).
        """
        if image not in IMAGE_MODES:
            raise ServeError(f"image={image!r}: choose one of {', '.join(IMAGE_MODES)}", status=400)
        checked = self.check(upload)
        with self._infer_lock:
            self._reload_if_changed()
            result = self.pipeline.label(checked.image, source=checked.filename)
        if image == "none":
            return LabelOutcome(result)
        small, s = scaled_down(checked.image, self.settings.preview_max_side)
        if image == "labelled":
            scaled = dataclasses.replace(
                result, faces=[dataclasses.replace(f, box=tuple(v * s for v in f.box)) for f in result.faces])
            small = scaled.draw(small, font=self.label_font)
        jpeg = encode_jpeg(small, self.settings.jpeg_quality)
        return LabelOutcome(result, jpeg, (int(small.shape[1]), int(small.shape[0])))

    def people(self) -> list[Any]:
        """Everyone in the gallery (:class:`~iznet.recognize.gallery.PersonSummary`), sorted by name."""
        return self.gallery.people()

    def person(self, name: str) -> Any:
        """One person (:class:`~iznet.recognize.gallery.PersonInfo`); 400 for an invalid name, 404 for an unknown one."""
        clean = check_name(name)
        try:
            return self.gallery.person(clean)
        except GalleryError:
            raise ServeError(f"no person named {clean!r} in the gallery", status=404) from None

    def health(self) -> dict[str, Any]:
        """Models and gallery at a glance."""
        with self._infer_lock:
            self._reload_if_changed()
            warnings_ = list(self.pipeline.warnings)
            threshold = self.pipeline.threshold
        people = self.gallery.people()
        emb = self.pipeline.embedder
        return {
            "status": "ok",
            "models_loaded": True,
            "detector": self.detector_name,
            "embedder": self.pipeline.tag,
            "embedder_trained": bool(getattr(emb, "trained", True)),
            "input_size": int(emb.input_size),
            "prototype_method": self.pipeline.prototype_method,
            "threshold": threshold,
            "gallery": str(self.gallery.path),
            "people": len(people),
            "images": sum(p.n_images for p in people),
            "warnings": warnings_,
            "limits": {"max_upload_bytes": self.settings.max_upload_bytes, "max_pixels": self.settings.max_pixels,
                       "max_files": self.settings.max_files},
        }

    # ------------------------------------------------------------------ writing
    def enroll(self, name: str, uploads: Sequence[Upload], new_person: bool = True) -> EnrollOutcome:
        """Enrol photos of one person (their most confident face each) in one gallery transaction.

        Args:
            name: the person.
            uploads: their photos.
            new_person: True: the person must not exist yet (409 otherwise); False: they must (404).

        Raises:
            ServeError: 400 bad name or no/too many files; 404/409 as above; 413/415/422 for a bad upload
                (checked before anything is written); 422 when no photo holds a usable face.
        """
        from iznet.recognize.pipeline import check_gallery_embedder, enroll_files

        clean = check_name(name)
        if not uploads:
            raise ServeError("give at least one photo of the person", status=400)
        if len(uploads) > self.settings.max_files:
            raise ServeError(f"{len(uploads)} photos in one request; the limit is {self.settings.max_files}",
                             status=400)
        checked = [self.check(u) for u in uploads]  # every upload is vetted before anything is written
        unique: dict[str, CheckedUpload] = {}
        repeated: list[str] = []
        for c in checked:
            if c.sha256 in unique:
                repeated.append(c.filename)
            else:
                unique[c.sha256] = c
        with self._write_lock:
            exists = clean in self.gallery
            if new_person and exists:
                raise ServeError(f"{clean!r} is already in the gallery; add photos to them instead", status=409)
            if not new_person and not exists:
                raise ServeError(f"no person named {clean!r} in the gallery", status=404)
            try:
                check_gallery_embedder(self.gallery, self.pipeline.tag)
            except GalleryError as e:
                raise ServeError(str(e), status=409) from None
            created: list[Path] = []
            try:
                paths = [self._store(c, created) for c in unique.values()]
                with self._infer_lock:
                    report = enroll_files(self.gallery, clean, paths, self.pipeline.embedder, self.pipeline.detector,
                                          method=self.pipeline.prototype_method)
            except GalleryError as e:
                # the gallery's one error class: "busy" (another process holds the write lock past the
                # timeout) is worth retrying; anything else here means no photo could be used
                status = 503 if "busy" in str(e) else 422
                msg = str(e)
                for c in unique.values():  # the user knows their file names, not our stored hash names
                    for stored in self.images_dir.glob(f"{c.sha256}.*"):
                        msg = msg.replace(stored.name, c.filename)
                raise ServeError(f"nothing was enrolled: {msg}", status=status) from None
            finally:
                self._drop_unreferenced(created)
                self._reload()
        by_path = {str(p): c.filename for p, c in zip(paths, unique.values())}
        return EnrollOutcome(
            name=report.name,
            created=report.created,
            added=[by_path[str(p)] for p in report.added],
            duplicates=[by_path[str(p)] for p in report.duplicates] + repeated,
            skipped=[(by_path.get(str(p), p.name), r) for p, r in report.skipped],
            several_faces=[(by_path.get(str(p), p.name), n) for p, n in report.several_faces],
            headshots=[by_path.get(str(p), p.name) for p in report.headshots],
        )

    def remove(self, name: str) -> tuple[str, int]:
        """Remove a person; their stored uploads go too unless someone else uses the same picture.

        Returns:
            ``(stored name, number of images removed)``.
        """
        clean = check_name(name)
        with self._write_lock:
            stored = self._existing(clean)
            shas = {r.sha256 for r in self.gallery.images(stored)}
            n = self.gallery.remove(stored)
            self._drop_unreferenced([p for s in shas for p in self.images_dir.glob(f"{s}.*")])
            self._reload()
        return stored, n

    def rename(self, old: str, new: str) -> str:
        """Rename a person; 404 unknown, 409 when the new name belongs to someone else. Returns the new name."""
        old_clean, new_clean = check_name(old), check_name(new)
        with self._write_lock:
            stored = self._existing(old_clean)
            if new_clean.casefold() != stored.casefold() and new_clean in self.gallery:
                raise ServeError(f"cannot rename {stored!r} to {new_clean!r}: that name is taken", status=409)
            out = self.gallery.rename(stored, new_clean)
            self._reload()
        return out

    # ------------------------------------------------------------------ helpers
    def _existing(self, clean: str) -> str:
        return self.person(clean).name

    def _store(self, c: CheckedUpload, created: list[Path]) -> Path:
        """Write an upload as ``<sha256><suffix>`` (atomically) unless that file exists; note new files."""
        from iznet.utils.io import atomic_path

        self.images_dir.mkdir(parents=True, exist_ok=True)
        path = (self.images_dir / f"{c.sha256}{c.suffix}").resolve()
        if not path.exists():
            with atomic_path(path) as tmp:
                tmp.write_bytes(c.data)
            created.append(path)
        return path

    #: uploads younger than this are left alone by the sweep: another process may be enrolling them right now
    ORPHAN_MIN_AGE_S = 600.0

    def sweep_orphans(self, min_age_s: float | None = None) -> int:
        """Delete stored uploads that no gallery image refers to (left by a process killed mid-enrolment),
        older than ``min_age_s`` (default :attr:`ORPHAN_MIN_AGE_S`); returns how many. Run at start-up."""
        import time as _time

        if not self.images_dir.is_dir():
            return 0
        age = self.ORPHAN_MIN_AGE_S if min_age_s is None else float(min_age_s)
        now = _time.time()
        old = []
        for p in self.images_dir.iterdir():
            try:
                if p.is_file() and now - p.stat().st_mtime >= age:
                    old.append(p)
            except OSError:
                continue
        before = sum(1 for p in old if p.exists())
        self._drop_unreferenced(old)
        n = before - sum(1 for p in old if p.exists())
        if n:
            _logger.info("removed %d upload(s) no gallery image refers to from %s", n, self.images_dir)
        return n

    def _drop_unreferenced(self, paths: Sequence[Path]) -> None:
        """Delete those of ``paths`` (inside the images folder) that no gallery image refers to."""
        if not paths:
            return
        try:
            used = {str(Path(r.path)) for r in self.gallery.images()}
        except IznetError as e:  # never delete what might still be referenced
            _logger.warning("kept %d upload(s): cannot list the gallery's images (%s)", len(paths), e)
            return
        root = self.images_dir.resolve()
        for p in paths:
            p = Path(p).resolve()
            if p.parent != root or str(p) in used:
                continue
            try:
                p.unlink(missing_ok=True)
            except OSError as e:
                _logger.warning("could not delete unused upload %s: %s", p, e)

    def _gallery_stamp(self) -> tuple:
        """Modification stamps of the gallery file and its WAL: they change when any process writes."""
        out = []
        for p in (self.gallery.path, Path(f"{self.gallery.path}-wal")):
            try:
                st = p.stat()
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append(None)
        return tuple(out)

    def _reload(self) -> None:
        with self._infer_lock:
            self.pipeline.reload()
            self._stamp = self._gallery_stamp()

    def _reload_if_changed(self) -> None:
        # another process (e.g. `iznet enroll`) may have written the gallery since we read it
        if self._gallery_stamp() != self._stamp:
            self._reload()


def check_name(name: str) -> str:
    """:func:`~iznet.recognize.gallery.validate_name`, answering 400 with its message."""
    from iznet.recognize.gallery import validate_name

    try:
        return validate_name(name)
    except GalleryError as e:
        raise ServeError(str(e), status=400) from None


__all__ = [
    "CheckedUpload", "EnrollOutcome", "IMAGE_MODES", "LabelOutcome", "RecognitionService", "ServeError",
    "ServeSettings", "UPLOAD_FORMATS", "Upload", "check_name", "check_upload", "clean_filename", "default_label_font",
    "encode_jpeg",
    "images_dir_for", "scaled_down", "sniff_image",
]
