"""Gallery store: round trip, transactions, duplicates, names, embedder tags, concurrency."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from iznet.errors import GalleryError
from iznet.recognize.gallery import Gallery, sha256_bytes, sha256_file, validate_name
from iznet.recognize.prototypes import compute_prototypes

TAG = "toy@1"
D = 16


def _emb(rng, n=1, d=D):
    X = rng.normal(size=(n, d))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def _items(rng, prefix, n, d=D):
    X = _emb(rng, n, d)
    return [(f"{prefix}/{i}.jpg", sha256_bytes(f"{prefix}-{i}".encode()), X[i]) for i in range(n)]


def _counts(path):
    con = sqlite3.connect(path)
    try:
        return {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("people", "images", "embeddings", "prototypes")}
    finally:
        con.close()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_round_trip(tmp_path, rng):
    path = tmp_path / "sub" / "g.db"
    alice, bob = _items(rng, "alice", 4), _items(rng, "bob", 3)
    with Gallery(path) as g:
        r = g.enroll("Alice", alice, TAG)
        assert r.created and r.name == "Alice" and len(r.added) == 4 and r.duplicates == []
        g.enroll("Bob", bob, TAG, method="centroid")
        assert [(p.name, p.n_images, p.embedders) for p in g.people()] == [("Alice", 4, (TAG,)), ("Bob", 3, (TAG,))]
        info = g.person("alice")  # names are looked up case-insensitively
        assert info.name == "Alice" and info.n_images == 4
        assert [im.path for im in info.images] == [a[0] for a in alice]
        assert info.prototypes == [(TAG, "centroid", 1, 1)]  # the default prototype
        assert g.rename("Bob", "Robert") == "Robert"
        assert "Robert" in g and "Bob" not in g
        assert g.remove("Robert") == 3
        assert len(g) == 1
        g.enroll("Carol", _items(rng, "carol", 2), TAG)
        X_before, labels_before, names_before = g.embeddings(TAG)
    with Gallery(path, create=False) as g:  # reopen from disk
        X, labels, names = g.embeddings(TAG)
        assert names == ["Alice", "Carol"] == names_before
        np.testing.assert_array_equal(labels, [0, 0, 0, 0, 1, 1])
        np.testing.assert_array_equal(labels, labels_before)
        # bit-for-bit equal to what was enrolled
        expected = np.stack([a[2] for a in alice] + [X_before[4], X_before[5]])
        assert X.dtype == np.float32
        assert X.tobytes() == expected.tobytes() == X_before.tobytes()
        P, pnames = g.prototypes(TAG, "medoid")
        assert pnames == ["Alice", "Carol"]
        np.testing.assert_array_equal(P[0], compute_prototypes(X[:4], "medoid")[0])
        assert g.embedders() == {TAG: D}


def test_missing_gallery_without_create(tmp_path):
    with pytest.raises(GalleryError, match="does not exist"):
        Gallery(tmp_path / "nope.db", create=False)
    assert not (tmp_path / "nope.db").exists()


def test_not_a_gallery(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(GalleryError, match="not a usable iznet gallery"):
        Gallery(junk)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(GalleryError, match="not an iznet gallery"):
        Gallery(other)


def test_newer_schema_refused(tmp_path):
    path = tmp_path / "g.db"
    Gallery(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE schema_version SET version = 99")
    con.commit()
    con.close()
    with pytest.raises(GalleryError, match="schema version 99"):
        Gallery(path)


def test_wal_and_foreign_keys(tmp_path):
    path = tmp_path / "g.db"
    with Gallery(path):
        pass
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


class _Boom(RuntimeError):
    pass


def _failing(items, after):
    for i, it in enumerate(items):
        if i == after:
            raise _Boom("injected failure")
        yield it


def test_failure_midway_leaves_no_partial_person(tmp_path, rng):
    path = tmp_path / "g.db"
    with Gallery(path) as g:
        g.enroll("Alice", _items(rng, "alice", 3), TAG)
        before = _counts(path)
        with pytest.raises(_Boom):
            g.enroll("Bob", _failing(_items(rng, "bob", 5), after=3), TAG)
        assert "Bob" not in g
        assert _counts(path) == before
        # an existing person keeps exactly their previous images
        old = g.embeddings(TAG)[0]
        with pytest.raises(_Boom):
            g.enroll("Alice", _failing(_items(rng, "alice2", 4), after=2), TAG)
        assert g.person("Alice").n_images == 3
        assert g.embeddings(TAG)[0].tobytes() == old.tobytes()
        assert _counts(path) == before
        # a bad item midway (wrong dimension) is also all-or-nothing
        bad = _items(rng, "bob", 3) + [("bob/odd.jpg", sha256_bytes(b"odd"), np.ones(D + 1, np.float32))]
        with pytest.raises(GalleryError, match="dimension"):
            g.enroll("Bob", bad, TAG)
        assert _counts(path) == before
    # no orphan rows anywhere
    con = sqlite3.connect(path)
    assert con.execute("SELECT COUNT(*) FROM images WHERE person_id NOT IN (SELECT id FROM people)").fetchone()[0] == 0
    assert con.execute("SELECT COUNT(*) FROM embeddings WHERE image_id NOT IN (SELECT id FROM images)").fetchone()[0] == 0
    con.close()


def test_remove_cascades(tmp_path, rng):
    path = tmp_path / "g.db"
    with Gallery(path) as g:
        g.enroll("Alice", _items(rng, "alice", 3), TAG)
        g.enroll("Bob", _items(rng, "bob", 2), TAG, method="kmeans", k=2)
        g.remove("Alice")
    assert _counts(path) == {"people": 1, "images": 2, "embeddings": 2, "prototypes": 1}


def test_failing_rename_leaves_both(tmp_path, rng):
    with Gallery(tmp_path / "g.db") as g:
        g.enroll("Alice", _items(rng, "alice", 2), TAG)
        g.enroll("Bob", _items(rng, "bob", 2), TAG)
        with pytest.raises(GalleryError, match="'Bob' is already in the gallery"):
            g.rename("Alice", "bob")
        with pytest.raises(GalleryError, match="path separator"):
            g.rename("Alice", "a/b")
        assert [(p.name, p.n_images) for p in g.people()] == [("Alice", 2), ("Bob", 2)]
        assert g.rename("Alice", "ALICE") == "ALICE"  # a case change of one's own name is fine
        assert [p.name for p in g.people()] == ["ALICE", "Bob"]


def test_duplicates(tmp_path, rng):
    with Gallery(tmp_path / "g.db") as g:
        items = _items(rng, "alice", 3)
        g.enroll("Alice", items, TAG)
        again = g.enroll("Alice", items[1:] + _items(rng, "new", 1), TAG)
        assert again.created is False
        assert again.duplicates == [items[1][0], items[2][0]]
        assert again.added == ["new/0.jpg"]
        assert g.person("Alice").n_images == 4
        # the same picture twice in one batch counts once
        r = g.enroll("Bob", [items[0], items[0]], TAG)
        assert r.added == [items[0][0]] and r.duplicates == [items[0][0]]
        with pytest.raises(GalleryError, match="nothing to enrol"):
            g.enroll("Carol", [], TAG)
        assert "Carol" not in g
        with pytest.raises(GalleryError, match="already in"):
            g.add_person("alice")


@pytest.mark.parametrize(
    "name, ok",
    [
        ("  Alice  ", "Alice"),
        ("Jisoo Kim", "Jisoo Kim"),
        ("지수", "지수"),
        ("O'Brien-Smith_2", "O'Brien-Smith_2"),
        ("x" * 64, "x" * 64),
    ],
)
def test_valid_names(name, ok):
    assert validate_name(name) == ok


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 65, "limit is 64"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("bad\x00name", "control"),
        ("tab\there", "control"),
        (".hidden", "dot"),
        ("Unknown", "reserved"),
        (42, "must be text"),
    ],
)
def test_invalid_names(tmp_path, name, message):
    with pytest.raises(GalleryError, match=message):
        validate_name(name)
    with Gallery(tmp_path / "g.db") as g:
        with pytest.raises(GalleryError, match=message):
            g.add_person(name)
        assert len(g) == 0


def test_unknown_person_error_suggests(tmp_path, rng):
    with Gallery(tmp_path / "g.db") as g:
        g.enroll("Alice", _items(rng, "alice", 1), TAG)
        with pytest.raises(GalleryError, match=r"no person named 'Alicia'.*did you mean 'Alice'.*iznet gallery list"):
            g.person("Alicia")
        for op in (lambda: g.remove("Zed"), lambda: g.rename("Zed", "Y"), lambda: g.images("Zed")):
            with pytest.raises(GalleryError, match="'Zed'"):
                op()


def test_embedder_compatibility(tmp_path, rng):
    with Gallery(tmp_path / "g.db") as g:
        g.enroll("Alice", _items(rng, "alice", 2), TAG)
        with pytest.raises(GalleryError, match="dimension 8 but .* 16-d embeddings"):
            g.enroll("Bob", _items(rng, "bob", 2, d=8), TAG)
        with pytest.raises(GalleryError, match="not from 'other@2'"):
            g.enroll("Bob", _items(rng, "bob", 2), "other@2")
        with pytest.raises(GalleryError, match="no embeddings from embedder 'other@2'"):
            g.embeddings("other@2")
        with pytest.raises(GalleryError, match="SHA-256"):
            g.enroll("Bob", [("b.jpg", "abc", _emb(rng)[0])], TAG)
        with pytest.raises(GalleryError, match="NaN"):
            g.enroll("Bob", [("b.jpg", sha256_bytes(b"b"), np.full(D, np.nan))], TAG)
        assert [p.name for p in g.people()] == ["Alice"]


def test_empty_gallery_errors(tmp_path):
    with Gallery(tmp_path / "g.db") as g:
        with pytest.raises(GalleryError, match="the gallery is empty: enrol people with `iznet enroll NAME IMAGES...`"):
            g.prototypes(TAG)
        with pytest.raises(GalleryError, match="the gallery is empty"):
            g.embeddings(TAG)


def test_replace_embeddings_rebuild(tmp_path, rng):
    path = tmp_path / "g.db"
    with Gallery(path) as g:
        g.enroll("Alice", _items(rng, "alice", 3), TAG, method="kmeans", k=2)
        g.enroll("Bob", _items(rng, "bob", 2), TAG)
        ids = [im.id for im in g.images()]
        new = {i: _emb(rng, 1, 32)[0] for i in ids}
        before = _counts(path)
        with pytest.raises(GalleryError, match="would have no embedding"):
            g.replace_embeddings("big@2", {ids[0]: new[ids[0]]})  # a new tag must cover every image
        with pytest.raises(GalleryError, match="not in gallery"):
            g.replace_embeddings("big@2", {**new, 999: new[ids[0]]})
        assert _counts(path) == before
        assert g.replace_embeddings("big@2", new) == len(ids)
        assert g.embedders() == {TAG: D, "big@2": 32}
        X, labels, names = g.embeddings("big@2")
        assert X.tobytes() == np.stack([new[i] for i in ids]).tobytes()
        # the prototype sets stored for the old tag were computed for the new one too
        protos = g.person("Alice").prototypes
        assert ("big@2", "kmeans", 2, 2) in protos and ("big@2", "centroid", 1, 1) in protos
        P, pnames = g.prototypes("big@2", "medoid")
        assert P.shape == (2, 32) and pnames == ["Alice", "Bob"]
        # enrolling with one tag leaves the other incomplete; missing_embeddings lists what to fill
        g.enroll("Carol", _items(rng, "carol", 1), TAG)
        missing = g.missing_embeddings("big@2")
        assert [m.person for m in missing] == ["Carol"]
        g.replace_embeddings("big@2", {missing[0].id: _emb(rng, 1, 32)[0]})
        assert g.missing_embeddings("big@2") == []
        with pytest.raises(GalleryError, match="dimension"):
            g.replace_embeddings("big@2", {ids[0]: _emb(rng, 1, 8)[0]})


def test_prototypes_stored_and_on_the_fly(tmp_path, rng):
    with Gallery(tmp_path / "g.db") as g:
        a = _items(rng, "alice", 6)
        g.enroll("Alice", a, TAG, method="kmeans", k=2)
        X = np.stack([it[2] for it in a])
        P, names = g.prototypes(TAG, "kmeans", k=2)
        np.testing.assert_array_equal(P, compute_prototypes(X, "kmeans", k=2))
        assert names == ["Alice", "Alice"]
        # centroid is not stored: computed on the fly, then stored by rebuild_prototypes
        Pc, _ = g.prototypes(TAG, "centroid")
        np.testing.assert_allclose(Pc[0], compute_prototypes(X, "centroid")[0])
        assert ("toy@1", "centroid", 1, 1) not in g.person("Alice").prototypes
        assert g.rebuild_prototypes(TAG, "centroid") == 1
        assert (TAG, "centroid", 1, 1) in g.person("Alice").prototypes
        # enrolling more refreshes every stored set of the person
        more = _items(rng, "alice-more", 2)
        g.enroll("Alice", more, TAG)
        X2 = np.concatenate([X, np.stack([it[2] for it in more])])
        np.testing.assert_allclose(g.prototypes(TAG, "centroid")[0][0], compute_prototypes(X2, "centroid")[0])
        np.testing.assert_array_equal(g.prototypes(TAG, "kmeans", k=2)[0], compute_prototypes(X2, "kmeans", k=2))
        Pall, nall = g.prototypes(TAG, "all")
        assert Pall.shape == (8, D) and nall == ["Alice"] * 8


def test_meta_and_threshold(tmp_path):
    path = tmp_path / "g.db"
    with Gallery(path) as g:
        assert g.threshold(TAG) is None
        g.set_threshold(TAG, 0.93)
        g.set_meta("note", {"a": [1, 2]})
    with Gallery(path) as g:
        assert g.threshold(TAG) == 0.93
        assert g.get_meta("note") == {"a": [1, 2]}
        g.set_threshold(TAG, None)
        assert g.threshold(TAG) is None
        with pytest.raises(GalleryError, match="finite"):
            g.set_threshold(TAG, float("nan"))


def test_one_writer_at_a_time(tmp_path, rng):
    path = tmp_path / "g.db"
    Gallery(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with Gallery(path, timeout=0.05) as g:
            with pytest.raises(GalleryError, match="busy"):
                g.enroll("Alice", _items(rng, "alice", 1), TAG)
            assert g.people() == []  # reading still works during the other write (WAL)
    finally:
        other.execute("ROLLBACK")
        other.close()
    with Gallery(path) as g:
        g.enroll("Alice", _items(rng, "alice", 1), TAG)
        assert len(g) == 1


def test_closed_gallery(tmp_path):
    g = Gallery(tmp_path / "g.db")
    g.close()
    g.close()  # idempotent
    with pytest.raises(GalleryError, match="closed"):
        g.people()


def test_sha256_file(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"hello")
    assert sha256_file(f) == sha256_bytes(b"hello") == (
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    )
    with pytest.raises(GalleryError, match="cannot read"):
        sha256_file(tmp_path / "missing.jpg")


def test_concurrent_writers_on_separate_connections(tmp_path):
    import threading

    path = tmp_path / "g.db"
    Gallery(path).close()
    errors: list[BaseException] = []

    def work(w):
        try:
            r = np.random.default_rng(w)
            with Gallery(path, timeout=30) as g:
                for p in range(5):
                    g.enroll(f"p{w}-{p}", _items(r, f"w{w}p{p}", 2), TAG)
                    g.people()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _counts(path) == {"people": 20, "images": 40, "embeddings": 40, "prototypes": 20}


def test_embedder_tag_with_comma_is_refused(tmp_path):
    import numpy as np

    from iznet.errors import GalleryError
    from iznet.recognize.gallery import Gallery

    with Gallery(tmp_path / "g.db") as g:
        with pytest.raises(GalleryError, match="comma"):
            g.enroll("Alice", [("a.jpg", "0" * 64, np.ones(4) / 2)], embedder_tag="raw(size=16,gray)")
