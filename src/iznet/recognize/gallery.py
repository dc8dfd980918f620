"""The gallery: who is known, from which pictures, and their embeddings and prototypes, in one SQLite file.

Layout and guarantees are described in ``docs/gallery.md``. In short:

- tables ``people``, ``images`` (one row per enrolled picture, unique per person by SHA-256 of its bytes),
  ``embeddings`` (per image and embedder tag, float32 little-endian blobs), ``prototypes`` (per person,
  embedder tag, method and k), ``meta`` (key -> JSON value) and ``schema_version``;
- every write is one transaction (``BEGIN IMMEDIATE``): it happens entirely or not at all;
- WAL journal, so readers never block the single writer; a writer waits up to ``timeout`` seconds for another.

>>> with Gallery("gallery.db") as g:                                  # doctest: +SKIP
...     g.enroll("Alice", [("alice1.jpg", sha256_file("alice1.jpg"), emb)], embedder_tag="nn2@abc123")
...     P, names = g.prototypes("nn2@abc123", "medoid")
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from iznet.errors import GalleryError
from iznet.recognize.prototypes import DEFAULT_METHOD, METHODS, compute_prototypes

_logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAX_NAME_LEN = 64
RESERVED_NAMES = ("unknown",)
"""Names a person may not have: the matcher answers ``"unknown"`` for a face it does not know."""

EMPTY_MESSAGE = "the gallery is empty: enrol people with `iznet enroll NAME IMAGES...`"

_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE people (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created TEXT NOT NULL
);
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    added TEXT NOT NULL,
    UNIQUE (person_id, sha256)
);
CREATE INDEX images_sha256 ON images(sha256);
CREATE TABLE embeddings (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    embedder TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (image_id, embedder)
);
CREATE INDEX embeddings_embedder ON embeddings(embedder);
CREATE TABLE prototypes (
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    embedder TEXT NOT NULL,
    method TEXT NOT NULL,
    k INTEGER NOT NULL,
    count INTEGER NOT NULL,
    dim INTEGER NOT NULL,
    vectors BLOB NOT NULL,
    PRIMARY KEY (person_id, embedder, method, k)
);
"""
_TABLES = ("schema_version", "meta", "people", "images", "embeddings", "prototypes")

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_F32 = np.dtype("<f4")  # stored byte order is fixed so a gallery file moves between machines


@dataclass(frozen=True)
class EnrollResult:
    """What :meth:`Gallery.enroll` did.

    Attributes:
        name: the person's stored name.
        created: True when the person was new.
        added: labels (paths) of the images added.
        duplicates: labels of the images skipped because that person already had the same content (SHA-256).
    """

    name: str
    created: bool
    added: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PersonSummary:
    """One line of :meth:`Gallery.people`: name, number of images, embedder tags present, creation time (UTC ISO)."""

    name: str
    n_images: int
    embedders: tuple[str, ...]
    created: str


@dataclass(frozen=True)
class ImageRecord:
    """One enrolled picture: row id, owner's name, path or label as given, SHA-256, time added, embedder tags."""

    id: int
    person: str
    path: str
    sha256: str
    added: str
    embedders: tuple[str, ...]


@dataclass(frozen=True)
class PersonInfo:
    """Everything about one person (:meth:`Gallery.person`).

    Attributes:
        prototypes: ``(embedder, method, k, count)`` of every stored prototype set.
    """

    name: str
    created: str
    images: list[ImageRecord]
    prototypes: list[tuple[str, str, int, int]]

    @property
    def n_images(self) -> int:
        return len(self.images)


def validate_name(name: str) -> str:
    """Return the cleaned name (stripped, NFC) or raise :class:`GalleryError` saying what is wrong.

    A name has 1–64 characters after stripping, no ``/`` or ``\\``, no control characters, does not start
    with a dot, and is not a reserved word (``unknown``).
    """
    if not isinstance(name, str):
        raise GalleryError(f"a person's name must be text, got {type(name).__name__}")
    clean = unicodedata.normalize("NFC", name).strip()
    if not clean:
        raise GalleryError("a person's name cannot be empty")
    if len(clean) > MAX_NAME_LEN:
        raise GalleryError(f"name {clean[:20]!r}... has {len(clean)} characters; the limit is {MAX_NAME_LEN}")
    if "/" in clean or "\\" in clean:
        raise GalleryError(f"name {clean!r} contains a path separator; use letters, digits, spaces, - or _")
    # format characters (bidi overrides...) are refused too, bar the joiners some scripts need in names
    bad = [c for c in clean if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c not in "\u200c\u200d"]
    if bad:
        raise GalleryError(f"name {clean!r} contains control characters ({', '.join(repr(c) for c in bad)})")
    if clean.startswith("."):
        raise GalleryError(f"name {clean!r} starts with a dot; drop the dot")
    if clean.casefold() in RESERVED_NAMES:
        raise GalleryError(f"{clean!r} is reserved (the matcher uses it for strangers); choose another name")
    return clean


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (the content hash the gallery uses to spot re-enrolled pictures)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as e:
        raise GalleryError(f"cannot read {path}: {e.strerror or e}") from e
    return h.hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _check_tag(tag: str) -> str:
    if not isinstance(tag, str) or not tag.strip() or len(tag) > 200:
        raise GalleryError(f"embedder tag must be a non-empty string of at most 200 characters, got {tag!r}")
    if "," in tag:  # tags are listed with SQLite's GROUP_CONCAT, whose DISTINCT form only joins with ","
        raise GalleryError(f"embedder tag {tag!r} must not contain a comma")
    return tag


def _vector(v: Any, what: str) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    if a.ndim == 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 1 or a.size == 0:
        raise GalleryError(f"embedding of {what} must be one vector (D,), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise GalleryError(f"embedding of {what} contains NaN or infinite values")
    return a.astype(_F32)


def _blob(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype=_F32).tobytes()


def _unblob(b: bytes, rows: int, dim: int) -> np.ndarray:
    return np.frombuffer(b, dtype=_F32).reshape(rows, dim).astype(np.float32)


def _norm_method(method: str, k: int) -> tuple[str, int]:
    if method not in METHODS:
        raise GalleryError(f"unknown prototype method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "kmeans":
        if int(k) < 1:
            raise GalleryError(f"k must be at least 1, got {k}")
        return method, int(k)
    return method, 1  # k means nothing for the other methods; store 1 so one row serves every k


#: Meta key prefix: ``source/<sha256>`` -> how an enrolled picture was cropped (``{"box": [x1, y1, x2, y2] | null,
#: "margin": m}``), so a rebuild with another embedder crops it the same way without a detector.
SOURCE_META_PREFIX = "source/"


def _writable(path: Path) -> bool:
    """Whether this process may write ``path`` (False on a read-only file system, even for root)."""
    return os.access(path, os.W_OK)


class Gallery:
    """A gallery file. Creates it (and its folder) when missing unless ``create=False``.

    Args:
        path: the SQLite file.
        create: create a missing file; when False a missing file raises :class:`GalleryError`.
        timeout: seconds a write waits for another writer before raising :class:`GalleryError`.
        readonly: open for reading only (no side files are created, so a gallery in a read-only folder, e.g.
            a system-wide install's demo, can be read); writes raise :class:`GalleryError`. None (default):
            read-only when the file or its folder cannot be written, else read-write.

    One object may be shared by threads (calls are serialised by a lock); several processes may open the
    same file: any number read at once, one writes at a time.
    """

    def __init__(self, path: str | Path, create: bool = True, timeout: float = 10.0, readonly: bool | None = None):
        self.path = Path(path)
        if not self.path.exists():
            if not create or readonly:
                raise GalleryError(f"gallery {self.path} does not exist; enrol someone first with `iznet enroll`")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise GalleryError(f"cannot create the folder of gallery {self.path}: {e.strerror or e}; "
                                   "pass --gallery PATH in a folder you can write") from None
        elif self.path.is_dir():
            raise GalleryError(f"gallery path {self.path} is a folder; give a file such as {self.path / 'gallery.db'}")
        folder_writable = _writable(self.path.parent)
        if readonly is None:
            readonly = self.path.exists() and not (_writable(self.path) and folder_writable)
        self.readonly = bool(readonly)
        self._lock = threading.RLock()
        try:
            if self.readonly:
                # mode=ro creates nothing; in a folder nobody may write, nobody can change the file either,
                # so it is opened as immutable (no -shm/-wal side files needed, even for a WAL gallery)
                uri = self.path.resolve().as_uri() + ("?mode=ro" if folder_writable else "?mode=ro&immutable=1")
                self._conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None,
                                             check_same_thread=False)
            else:
                self._conn = sqlite3.connect(
                    str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False
                )
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            if not self.readonly:
                mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal":
                    _logger.warning("gallery %s: WAL journal not available (got %s)", self.path, mode)
            self._init_schema()
        except sqlite3.DatabaseError as e:
            with contextlib.suppress(Exception):
                self._conn.close()
            raise GalleryError(f"{self.path} is not a usable iznet gallery: {e}") from e

    # ------------------------------------------------------------------ plumbing
    def _init_schema(self) -> None:
        # look first under a read snapshot, so opening an existing gallery never waits for a writer
        with self._read() as cur:
            tables = self._tables(cur)
            if tables:
                self._check_schema(cur, tables)
                return
        with self._write() as cur:
            tables = self._tables(cur)  # another process may have created it meanwhile
            if tables:
                self._check_schema(cur, tables)
                return
            # statement by statement: executescript() would COMMIT and break the transaction
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    cur.execute(stmt)
            cur.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))

    @staticmethod
    def _tables(cur: sqlite3.Cursor) -> set[str]:
        return {r[0] for r in cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _check_schema(self, cur: sqlite3.Cursor, tables: set[str]) -> None:
        missing = [t for t in _TABLES if t not in tables]
        if missing:
            raise GalleryError(
                f"{self.path} is an SQLite file but not an iznet gallery (missing tables: {', '.join(missing)})"
            )
        row = cur.execute("SELECT MAX(version) FROM schema_version").fetchone()
        version = row[0] if row else None
        if version is None or version > SCHEMA_VERSION:
            raise GalleryError(
                f"gallery {self.path} has schema version {version}; this iznet reads version {SCHEMA_VERSION}"
                " (upgrade iznet)"
            )

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction: COMMIT when the body returns, ROLLBACK when it raises."""
        with self._lock:
            self._check_open()
            if self.readonly:
                raise GalleryError(f"gallery {self.path} is read-only here (its file or folder cannot be written); "
                                   "copy it to a folder you can write and pass --gallery COPY")
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                if "readonly" in str(e) or "read-only" in str(e):
                    raise GalleryError(f"cannot write gallery {self.path}: {e}; check its permissions or copy it "
                                       "to a folder you can write") from None
                raise GalleryError(
                    f"gallery {self.path} is busy (another process is writing to it): {e}; try again"
                ) from e
            try:
                yield cur
            except sqlite3.OperationalError as e:
                self._conn.rollback()
                if "readonly" in str(e) or "read-only" in str(e) or "disk" in str(e):
                    raise GalleryError(f"cannot write gallery {self.path}: {e}; check its permissions and free "
                                       "space, or copy it to a folder you can write") from None
                raise
            except BaseException:
                self._conn.rollback()
                raise
            else:
                try:
                    cur.execute("COMMIT")
                except sqlite3.OperationalError as e:
                    self._conn.rollback()
                    raise GalleryError(f"could not save gallery {self.path}: {e}") from e
            finally:
                cur.close()

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Cursor]:
        """A read transaction, so several SELECTs see one snapshot even while another process writes."""
        with self._lock:
            self._check_open()
            cur = self._conn.cursor()
            cur.execute("BEGIN")
            try:
                yield cur
            finally:
                self._conn.rollback()
                cur.close()

    def _check_open(self) -> None:
        if self._conn is None:
            raise GalleryError(f"gallery {self.path} is closed")

    def close(self) -> None:
        """Close the file. Further calls raise :class:`GalleryError`."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Gallery({str(self.path)!r})"

    def _person_row(self, cur: sqlite3.Cursor, name: str) -> tuple[int, str]:
        key = unicodedata.normalize("NFC", name).strip() if isinstance(name, str) else name
        row = cur.execute("SELECT id, name FROM people WHERE name = ?", (key,)).fetchone()
        if row is None:
            known = [r[0] for r in cur.execute("SELECT name FROM people")]
            close = difflib.get_close_matches(str(key), known, n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            raise GalleryError(f"no person named {key!r} in gallery {self.path}{hint}; see `iznet gallery list`")
        return int(row[0]), row[1]

    # ------------------------------------------------------------------ people
    def add_person(self, name: str) -> str:
        """Add a person with no images yet; returns the stored (cleaned) name."""
        clean = validate_name(name)
        with self._write() as cur:
            self._insert_person(cur, clean)
        return clean

    def _insert_person(self, cur: sqlite3.Cursor, clean: str) -> int:
        existing = cur.execute("SELECT name FROM people WHERE name = ?", (clean,)).fetchone()
        if existing is not None:
            raise GalleryError(f"{existing[0]!r} is already in gallery {self.path}")
        cur.execute("INSERT INTO people (name, created) VALUES (?, ?)", (clean, _now()))
        return int(cur.lastrowid)

    def people(self) -> list[PersonSummary]:
        """Everyone in the gallery, sorted by name."""
        with self._read() as cur:
            rows = cur.execute(
                """SELECT p.name, p.created, COUNT(i.id),
                          (SELECT GROUP_CONCAT(DISTINCT e.embedder) FROM embeddings e
                             JOIN images i2 ON i2.id = e.image_id WHERE i2.person_id = p.id)
                   FROM people p LEFT JOIN images i ON i.person_id = p.id
                   GROUP BY p.id ORDER BY p.name"""
            ).fetchall()
        return [
            PersonSummary(name=n, n_images=int(c), embedders=tuple(sorted(t.split(","))) if t else (), created=cr)
            for n, cr, c, t in rows
        ]

    def __len__(self) -> int:
        with self._read() as cur:
            return int(cur.execute("SELECT COUNT(*) FROM people").fetchone()[0])

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        with self._read() as cur:
            key = unicodedata.normalize("NFC", name).strip()
            return cur.execute("SELECT 1 FROM people WHERE name = ?", (key,)).fetchone() is not None

    def person(self, name: str) -> PersonInfo:
        """One person's images and stored prototype sets. Unknown name: :class:`GalleryError`."""
        with self._read() as cur:
            pid, stored = self._person_row(cur, name)
            created = cur.execute("SELECT created FROM people WHERE id = ?", (pid,)).fetchone()[0]
            images = self._image_records(cur, "WHERE i.person_id = ?", (pid,))
            protos = [
                (e, m, int(k), int(c))
                for e, m, k, c in cur.execute(
                    "SELECT embedder, method, k, count FROM prototypes WHERE person_id = ? ORDER BY embedder, method, k",
                    (pid,),
                )
            ]
        return PersonInfo(name=stored, created=created, images=images, prototypes=protos)

    def images(self, name: str | None = None) -> list[ImageRecord]:
        """Enrolled images (all, or one person's), ordered by person then insertion; e.g. to re-embed them."""
        with self._read() as cur:
            if name is None:
                return self._image_records(cur, "", ())
            pid, _ = self._person_row(cur, name)
            return self._image_records(cur, "WHERE i.person_id = ?", (pid,))

    @staticmethod
    def _image_records(cur: sqlite3.Cursor, where: str, args: tuple) -> list[ImageRecord]:
        rows = cur.execute(
            f"""SELECT i.id, p.name, i.path, i.sha256, i.added,
                       (SELECT GROUP_CONCAT(e.embedder) FROM embeddings e WHERE e.image_id = i.id)
                FROM images i JOIN people p ON p.id = i.person_id {where}
                ORDER BY p.name, i.id""",
            args,
        ).fetchall()
        return [
            ImageRecord(int(i), n, pth, s, a, tuple(sorted(t.split(","))) if t else ())
            for i, n, pth, s, a, t in rows
        ]

    def remove(self, name: str) -> int:
        """Remove a person with their images, embeddings and prototypes; returns the number of images removed."""
        with self._write() as cur:
            pid, _ = self._person_row(cur, name)
            shas = [r[0] for r in cur.execute("SELECT sha256 FROM images WHERE person_id = ?", (pid,))]
            n = len(shas)
            cur.execute("DELETE FROM people WHERE id = ?", (pid,))  # ON DELETE CASCADE takes the rest
            for sha in set(shas):  # their crop records too, unless another person has the same picture
                if not cur.execute("SELECT 1 FROM images WHERE sha256 = ? LIMIT 1", (sha,)).fetchone():
                    cur.execute("DELETE FROM meta WHERE key = ?", (SOURCE_META_PREFIX + sha,))
        return n

    def rename(self, old: str, new: str) -> str:
        """Rename a person; returns the stored new name. The new name must be valid and not taken by someone else."""
        clean = validate_name(new)
        with self._write() as cur:
            pid, _ = self._person_row(cur, old)
            other = cur.execute("SELECT id, name FROM people WHERE name = ?", (clean,)).fetchone()
            if other is not None and int(other[0]) != pid:
                raise GalleryError(f"cannot rename {old!r} to {clean!r}: {other[1]!r} is already in the gallery")
            cur.execute("UPDATE people SET name = ? WHERE id = ?", (clean, pid))
        return clean

    # ------------------------------------------------------------------ embeddings
    def embedders(self) -> dict[str, int]:
        """Embedder tags present in the gallery and their embedding dimension."""
        with self._read() as cur:
            return self._embedders(cur)

    @staticmethod
    def _embedders(cur: sqlite3.Cursor) -> dict[str, int]:
        return {
            t: int(d)
            for t, d in cur.execute("SELECT embedder, MIN(dim) FROM embeddings GROUP BY embedder ORDER BY embedder")
        }

    def _check_compatible(self, cur: sqlite3.Cursor, tag: str, dim: int, new_tag_ok: bool) -> None:
        tags = self._embedders(cur)
        if tag in tags:
            if tags[tag] != dim:
                raise GalleryError(
                    f"embedding has dimension {dim} but gallery {self.path} holds {tags[tag]}-d embeddings"
                    f" from embedder {tag!r}"
                )
        elif tags and not new_tag_ok:
            raise GalleryError(
                f"gallery {self.path} holds embeddings from {', '.join(repr(t) for t in tags)}, not from {tag!r};"
                " enrol with the same embedder, or rebuild the gallery's embeddings with the new one first"
            )

    def enroll(
        self,
        name: str,
        items: Iterable[tuple[str, str, Any]],
        embedder_tag: str,
        method: str = DEFAULT_METHOD,
        k: int = 3,
        sources: Mapping[str, Any] | None = None,
    ) -> EnrollResult:
        """Add pictures of a person (created if new) and refresh their prototypes, in ONE transaction.

        If anything fails midway (a bad item, an exception from ``items`` itself, a database error), nothing
        is written: a new person does not appear, an existing one keeps exactly their previous images.

        Args:
            name: the person.
            items: ``(path_or_label, sha256_hex, embedding (D,))`` per picture; may be a lazy iterator.
            embedder_tag: identifies the model that made the embeddings (e.g. ``"nn2@<checkpoint hash>"``).
                It must be one the gallery already holds, unless the gallery has no embeddings yet.
            method, k: the prototypes to compute and store for this person (see :mod:`iznet.recognize.prototypes`).
                Any other prototype sets already stored for the person under this tag are recomputed too.
            sources: optional JSON-serialisable record per SHA-256 (how the picture was cropped), stored as
                meta ``source/<sha256>`` for each picture added, in the same transaction.

        Returns:
            :class:`EnrollResult`. A picture the person already has (same SHA-256) is skipped and listed
            in ``duplicates``.
        """
        clean = validate_name(name)
        tag = _check_tag(embedder_tag)
        method, k = _norm_method(method, k)
        added: list[str] = []
        dups: list[str] = []
        with self._write() as cur:
            row = cur.execute("SELECT id, name FROM people WHERE name = ?", (clean,)).fetchone()
            created = row is None
            pid = self._insert_person(cur, clean) if created else int(row[0])
            stored = clean if created else row[1]
            checked_dim = False
            for n, item in enumerate(items):
                try:
                    label, sha, emb = item
                except (TypeError, ValueError) as e:
                    raise GalleryError(
                        f"enrolment item {n} must be (path_or_label, sha256, embedding), got {type(item).__name__}"
                    ) from e
                label = str(label)
                sha = str(sha).lower()
                if not _SHA256_RE.match(sha):
                    raise GalleryError(f"{label}: {sha!r} is not a hex SHA-256 (use iznet.recognize.gallery.sha256_file)")
                vec = _vector(emb, label)
                if not checked_dim:
                    self._check_compatible(cur, tag, vec.size, new_tag_ok=False)
                    dim = vec.size
                    checked_dim = True
                elif vec.size != dim:
                    raise GalleryError(f"{label}: embedding has dimension {vec.size}, the others in this batch {dim}")
                if cur.execute(
                    "SELECT 1 FROM images WHERE person_id = ? AND sha256 = ?", (pid, sha)
                ).fetchone():
                    dups.append(label)
                    continue
                other = cur.execute(
                    "SELECT p.name FROM images i JOIN people p ON p.id = i.person_id WHERE i.sha256 = ? LIMIT 1",
                    (sha,),
                ).fetchone()
                if other is not None:
                    _logger.warning("%s: the same picture is already enrolled as %r", label, other[0])
                cur.execute(
                    "INSERT INTO images (person_id, path, sha256, added) VALUES (?, ?, ?, ?)",
                    (pid, label, sha, _now()),
                )
                cur.execute(
                    "INSERT INTO embeddings (image_id, embedder, dim, vector) VALUES (?, ?, ?, ?)",
                    (cur.lastrowid, tag, vec.size, _blob(vec)),
                )
                added.append(label)
                if sources is not None and sha in sources:
                    cur.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                (SOURCE_META_PREFIX + sha, json.dumps(sources[sha])))
            if created and not added:
                raise GalleryError(f"nothing to enrol for {clean!r}: no images were given")
            sets = {(method, k)} | {
                (m, int(kk))
                for m, kk in cur.execute(
                    "SELECT method, k FROM prototypes WHERE person_id = ? AND embedder = ?", (pid, tag)
                )
            }
            for m, kk in sorted(sets):
                self._store_prototypes(cur, pid, tag, m, kk)
        if dups:
            _logger.info("%s: %d picture(s) already enrolled, skipped", stored, len(dups))
        return EnrollResult(name=stored, created=created, added=added, duplicates=dups)

    def _person_embeddings(self, cur: sqlite3.Cursor, pid: int, tag: str) -> np.ndarray | None:
        rows = cur.execute(
            """SELECT e.dim, e.vector FROM embeddings e JOIN images i ON i.id = e.image_id
               WHERE i.person_id = ? AND e.embedder = ? ORDER BY i.id""",
            (pid, tag),
        ).fetchall()
        if not rows:
            return None
        return np.stack([_unblob(b, 1, int(d))[0] for d, b in rows])

    def _store_prototypes(self, cur: sqlite3.Cursor, pid: int, tag: str, method: str, k: int) -> None:
        cur.execute(
            "DELETE FROM prototypes WHERE person_id = ? AND embedder = ? AND method = ? AND k = ?",
            (pid, tag, method, k),
        )
        X = self._person_embeddings(cur, pid, tag)
        if X is None or method == "all":  # "all" is the embeddings themselves; nothing to store
            return
        P = compute_prototypes(X, method=method, k=k)
        cur.execute(
            "INSERT INTO prototypes (person_id, embedder, method, k, count, dim, vectors) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (pid, tag, method, k, P.shape[0], P.shape[1], _blob(P)),
        )

    def embeddings(self, embedder_tag: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """All embeddings from one embedder.

        Returns:
            ``(X, labels, names)``: float32 (N, D) exactly as stored, int64 (N,) index into ``names``,
            and the people's names (sorted; only people with at least one embedding from this tag).
        """
        tag = _check_tag(embedder_tag)
        with self._read() as cur:
            rows = cur.execute(
                """SELECT p.name, e.dim, e.vector FROM embeddings e
                   JOIN images i ON i.id = e.image_id JOIN people p ON p.id = i.person_id
                   WHERE e.embedder = ? ORDER BY p.name, i.id""",
                (tag,),
            ).fetchall()
            if not rows:
                self._raise_no_embeddings(cur, tag)
            missing = self._count_missing(cur, tag)
        if missing:
            _logger.warning("%d enrolled image(s) have no embedding from %r; rebuild to include them", missing, tag)
        names: list[str] = []
        labels = np.empty(len(rows), dtype=np.int64)
        for j, (n, _, _) in enumerate(rows):
            if not names or names[-1] != n:
                names.append(n)
            labels[j] = len(names) - 1
        X = np.stack([_unblob(b, 1, int(d))[0] for _, d, b in rows])
        return X, labels, names

    def _raise_no_embeddings(self, cur: sqlite3.Cursor, tag: str) -> None:
        tags = self._embedders(cur)
        if not tags:
            raise GalleryError(EMPTY_MESSAGE)
        held = []
        for t in tags:
            row = cur.execute("SELECT value FROM meta WHERE key = ?", (f"embedder_source/{t}",)).fetchone()
            held.append(f"{t!r} (--embedder {json.loads(row[0])})" if row else repr(t))
        raise GalleryError(
            f"gallery {self.path} has no embeddings from embedder {tag!r}; it holds {', '.join(held)}. Use one of"
            f" those, or rebuild the gallery's embeddings with {tag!r}"
        )

    @staticmethod
    def _count_missing(cur: sqlite3.Cursor, tag: str) -> int:
        return int(
            cur.execute(
                "SELECT COUNT(*) FROM images i WHERE NOT EXISTS"
                " (SELECT 1 FROM embeddings e WHERE e.image_id = i.id AND e.embedder = ?)",
                (tag,),
            ).fetchone()[0]
        )

    def missing_embeddings(self, embedder_tag: str) -> list[ImageRecord]:
        """Images that have no embedding from ``embedder_tag`` (to be filled with :meth:`replace_embeddings`)."""
        tag = _check_tag(embedder_tag)
        with self._read() as cur:
            return [r for r in self._image_records(cur, "", ()) if tag not in r.embedders]

    def replace_embeddings(self, embedder_tag: str, embeddings: Mapping[int, Any]) -> int:
        """Write embeddings from ``embedder_tag`` for the given image ids (e.g. a rebuild with another model).

        One transaction. Afterwards every image in the gallery must have an embedding from this tag, so a new
        tag needs every image; an existing one may be given only the images it lacks or any subset to replace.
        Stored prototype sets of the tag are recomputed; when the tag is new, the sets stored under the other
        tags (method and k) are computed for it as well.

        Args:
            embedder_tag: the tag written.
            embeddings: image id (see :meth:`images`) -> embedding (D,).

        Returns:
            The number of embeddings written.
        """
        tag = _check_tag(embedder_tag)
        with self._write() as cur:
            ids = {int(r[0]) for r in cur.execute("SELECT id FROM images")}
            unknown = sorted(set(int(i) for i in embeddings) - ids)
            if unknown:
                raise GalleryError(f"image id(s) {unknown[:5]} are not in gallery {self.path}; see Gallery.images()")
            vecs = {int(i): _vector(v, f"image {i}") for i, v in embeddings.items()}
            dims = {v.size for v in vecs.values()}
            if len(dims) > 1:
                raise GalleryError(f"embeddings given for {tag!r} have different dimensions {sorted(dims)}")
            if vecs:
                dim = dims.pop()
                keep = cur.execute(
                    "SELECT MIN(dim), MAX(dim) FROM embeddings WHERE embedder = ? AND image_id NOT IN (%s)"
                    % ",".join("?" * len(vecs)),
                    (tag, *vecs),
                ).fetchone()
                if keep[0] is not None and (keep[0] != dim or keep[1] != dim):
                    raise GalleryError(
                        f"embeddings given for {tag!r} have dimension {dim}; the ones kept have {keep[0]}"
                    )
            is_new = cur.execute("SELECT 1 FROM embeddings WHERE embedder = ? LIMIT 1", (tag,)).fetchone() is None
            for i, v in vecs.items():
                cur.execute(
                    "INSERT OR REPLACE INTO embeddings (image_id, embedder, dim, vector) VALUES (?, ?, ?, ?)",
                    (i, tag, v.size, _blob(v)),
                )
            missing = self._count_missing(cur, tag)
            if missing:
                raise GalleryError(
                    f"{missing} image(s) would have no embedding from {tag!r}; give one for every image"
                    " (see Gallery.missing_embeddings)"
                )
            sets = {(m, int(k)) for m, k in cur.execute("SELECT DISTINCT method, k FROM prototypes WHERE embedder = ?", (tag,))}
            if is_new:
                sets |= {(m, int(k)) for m, k in cur.execute("SELECT DISTINCT method, k FROM prototypes")}
            pids = [int(r[0]) for r in cur.execute("SELECT id FROM people")]
            for m, k in sorted(sets):
                for pid in pids:
                    self._store_prototypes(cur, pid, tag, m, k)
        return len(vecs)

    # ------------------------------------------------------------------ prototypes
    def rebuild_prototypes(self, embedder_tag: str, method: str = DEFAULT_METHOD, k: int = 3) -> int:
        """Recompute and store one prototype set for everyone (one transaction); returns the number of people."""
        tag = _check_tag(embedder_tag)
        method, k = _norm_method(method, k)
        with self._write() as cur:
            if cur.execute("SELECT 1 FROM embeddings WHERE embedder = ? LIMIT 1", (tag,)).fetchone() is None:
                self._raise_no_embeddings(cur, tag)
            pids = [int(r[0]) for r in cur.execute("SELECT id FROM people")]
            for pid in pids:
                self._store_prototypes(cur, pid, tag, method, k)
            return len(pids)

    def prototypes(self, embedder_tag: str, method: str = DEFAULT_METHOD, k: int = 3) -> tuple[np.ndarray, list[str]]:
        """Prototype vectors of everyone who has embeddings from ``embedder_tag``.

        Stored sets are read as they are; for a person without a stored set of this method and k the set is
        computed on the fly (not stored; :meth:`rebuild_prototypes` stores it).

        Returns:
            ``(P, names)``: float32 (P, D) and one name per row. A person has one row for medoid and centroid,
            up to k rows for kmeans and one per image for ``all``; pass both to :class:`~iznet.recognize.matcher.Matcher`.
        """
        tag = _check_tag(embedder_tag)
        method, k = _norm_method(method, k)
        with self._read() as cur:
            people = cur.execute(
                """SELECT DISTINCT p.id, p.name FROM people p JOIN images i ON i.person_id = p.id
                   JOIN embeddings e ON e.image_id = i.id WHERE e.embedder = ? ORDER BY p.name""",
                (tag,),
            ).fetchall()
            if not people:
                self._raise_no_embeddings(cur, tag)
            blocks: list[np.ndarray] = []
            names: list[str] = []
            computed = 0
            for pid, name in people:
                row = None
                if method != "all":
                    row = cur.execute(
                        "SELECT count, dim, vectors FROM prototypes"
                        " WHERE person_id = ? AND embedder = ? AND method = ? AND k = ?",
                        (pid, tag, method, k),
                    ).fetchone()
                if row is not None:
                    P = _unblob(row[2], int(row[0]), int(row[1]))
                else:
                    P = compute_prototypes(self._person_embeddings(cur, int(pid), tag), method=method, k=k)
                    computed += method != "all"
                blocks.append(P)
                names.extend([name] * len(P))
        if computed:
            _logger.info("computed %s prototypes for %d people on the fly (not stored)", method, computed)
        return np.concatenate(blocks, axis=0), names

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str, default: Any = None) -> Any:
        """A value stored with :meth:`set_meta` (JSON-decoded), or ``default``."""
        with self._read() as cur:
            row = cur.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value under ``key`` (``None`` deletes the key)."""
        with self._write() as cur:
            if value is None:
                cur.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                cur.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def embedder_source(self, embedder_tag: str) -> str | None:
        """The checkpoint file an embedder's vectors came from, as recorded when they were written, or None."""
        return self.get_meta(f"embedder_source/{_check_tag(embedder_tag)}")

    def record_embedder_source(self, embedder_tag: str, source: str | None) -> None:
        """Remember which checkpoint file wrote an embedder's vectors (nothing for sources that are no file)."""
        if source and self.embedder_source(embedder_tag) != source:
            self.set_meta(f"embedder_source/{_check_tag(embedder_tag)}", str(source))

    def threshold(self, embedder_tag: str) -> float | None:
        """The calibrated unknown-face threshold stored for an embedder, or None."""
        v = self.get_meta(f"threshold/{_check_tag(embedder_tag)}")
        return None if v is None else float(v)

    def set_threshold(self, embedder_tag: str, value: float | None) -> None:
        """Store (or with None, forget) the unknown-face threshold of an embedder."""
        if value is not None and not np.isfinite(value):
            raise GalleryError(f"threshold must be a finite number, got {value}")
        self.set_meta(f"threshold/{_check_tag(embedder_tag)}", None if value is None else float(value))
