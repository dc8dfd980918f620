"""Many clients at once: enrolments and labels from threads leave a consistent gallery; a real server (uvicorn
on loopback) refuses an oversized body before it has been sent in full."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi.testclient import TestClient

from iznet.recognize.gallery import Gallery


def check_consistent(svc) -> dict[str, int]:
    """The gallery passes SQLite's integrity check, every image has an embedding, and the uploads folder
    holds exactly the files the gallery refers to. Returns name -> number of images."""
    path = svc.gallery.path
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        no_emb = con.execute("SELECT COUNT(*) FROM images i WHERE NOT EXISTS "
                             "(SELECT 1 FROM embeddings e WHERE e.image_id = i.id)").fetchone()[0]
        assert no_emb == 0
    with Gallery(path) as g:
        referenced = {r.path for r in g.images()}
        counts = {p.name: p.n_images for p in g.people()}
    on_disk = {str(p.resolve()) for p in svc.images_dir.iterdir()} if svc.images_dir.exists() else set()
    assert on_disk == referenced
    return counts


def test_concurrent_enrolments_and_labels_leave_a_consistent_gallery(make_app, synth):
    app, svc, _ = make_app()
    n_people = 6
    barrier = threading.Barrier(n_people + 2)

    def enrol(p: int) -> int:
        client = TestClient(app)  # one client per thread: each request runs on its own event loop
        files = [("files", (f"p{p}_{v}.png", synth.photo_bytes(p, v))) for v in (1, 2)]
        barrier.wait(timeout=60)
        return client.post("/api/people", data={"name": f"person {p}"}, files=files).status_code

    def labels() -> list[int]:
        client = TestClient(app)
        photo = synth.encode(synth.make_photo([(0, 3, 10, 10), (1, 3, 120, 60)]))
        barrier.wait(timeout=60)
        return [client.post("/api/label", files={"file": ("x.png", photo)}).status_code for _ in range(4)]

    with ThreadPoolExecutor(n_people + 2) as ex:
        enrolled = [ex.submit(enrol, p) for p in range(n_people)]
        labelled = [ex.submit(labels) for _ in range(2)]
        assert [f.result() for f in enrolled] == [201] * n_people
        assert [c for f in labelled for c in f.result()] == [200] * 8
    assert check_consistent(svc) == {f"person {p}": 2 for p in range(n_people)}
    # every person is recognised afterwards: the matcher saw every enrolment
    client = TestClient(app)
    for p in range(n_people):
        doc = client.post("/api/label?image=none", files={"file": ("q.png", synth.photo_bytes(p, 7))}).json()
        assert doc["faces"][0]["name"] == f"person {p}"


def test_racing_enrolments_of_one_name_create_one_person(make_app, synth):
    app, svc, _ = make_app()
    n = 5
    barrier = threading.Barrier(n)

    def enrol(i: int) -> tuple[int, str]:
        client = TestClient(app)
        files = [("files", (f"{i}_{v}.png", synth.photo_bytes(0, 10 * i + v))) for v in (1, 2, 3)]
        barrier.wait(timeout=60)
        r = client.post("/api/people", data={"name": "ann"}, files=files)
        return r.status_code, r.text

    with ThreadPoolExecutor(n) as ex:
        results = list(ex.map(enrol, range(n)))
    codes = sorted(c for c, _ in results)
    assert codes == [201] + [409] * (n - 1), results
    assert check_consistent(svc) == {"ann": 3}  # exactly one request's photos, no leftovers of the others


def test_remove_and_rename_while_labelling(make_app, synth):
    app, svc, _ = make_app()
    client = TestClient(app)
    for p in range(3):
        files = [("files", (f"{p}.png", synth.photo_bytes(p, 1)))]
        assert client.post("/api/people", data={"name": f"p{p}"}, files=files).status_code == 201
    photo = synth.encode(synth.make_photo([(0, 2, 10, 10), (1, 2, 80, 60), (2, 2, 170, 100)]))

    def label_many() -> set[int]:
        c = TestClient(app)
        return {c.post("/api/label?image=none", files={"file": ("x.png", photo)}).status_code for _ in range(6)}

    with ThreadPoolExecutor(3) as ex:
        futs = [ex.submit(label_many) for _ in range(2)]
        assert TestClient(app).delete("/api/people/p1").status_code == 200
        assert TestClient(app).post("/api/people/p2/rename", json={"new_name": "two"}).status_code == 200
        assert set().union(*(f.result() for f in futs)) == {200}
    assert check_consistent(svc) == {"p0": 1, "two": 1}


def _raw_request(url: str, head: str, body_chunks, timeout: float = 10.0) -> tuple[int, dict, int]:
    """Send a request by hand and stop sending as soon as the server answers or the socket buffers are full;
    then wait (at most ``timeout`` s) for the answer. A server that waited for the whole body would never
    answer. Returns (status, JSON, bytes handed to the socket)."""
    host, port = url.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(head.encode())
        s.setblocking(False)
        data = b""
        for chunk in body_chunks:
            try:
                data += s.recv(65536)
            except BlockingIOError:
                pass
            if data:
                break  # the server answered already: stop sending
            try:
                s.sendall(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        s.setblocking(True)
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            more = s.recv(65536)
            if not more:
                break
            data += more
    status = int(data.split(b" ", 2)[1])
    body = data.split(b"\r\n\r\n", 1)[1]
    if b"Transfer-Encoding: chunked" in data.split(b"\r\n\r\n", 1)[0] or body[:1] not in (b"{",):
        body = body[body.index(b"{"):body.rindex(b"}") + 1]
    return status, json.loads(body), sent


def test_live_server_refuses_a_declared_oversize_body_without_reading_it(live_server):
    url, svc = live_server(max_upload_bytes=100_000)
    head = ("POST /api/label HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            "Content-Length: 50000000\r\n\r\n")
    status, doc, sent = _raw_request(url, head, [])  # nothing of the 50 MB is ever sent
    assert status == 413 and "larger than the limit" in doc["error"]
    assert sent == 0


def test_live_server_stops_reading_a_streamed_body_past_the_limit(live_server, synth):
    url, svc = live_server(max_upload_bytes=100_000)
    head = ("POST /api/label HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    piece = bytes(16384)
    chunks = [b"%x\r\n%s\r\n" % (len(part), part)] + [b"%x\r\n%s\r\n" % (len(piece), piece)] * 2000  # ~32 MB
    status, doc, sent = _raw_request(url, head, chunks)
    assert status == 413 and "larger than the limit" in doc["error"]
    assert sent < 8_000_000  # answered without the rest of the 32 MB
    # the server is fine afterwards
    r = httpx.post(f"{url}/api/label", files={"file": ("ok.png", synth.photo_bytes(0, 1))}, timeout=30)
    assert r.status_code == 200 and len(r.json()["faces"]) == 1
    assert len(svc.gallery) == 0


def test_gallery_busy_with_another_writer_is_503_and_leaves_no_files(served, synth):
    client, svc, _ = served
    svc.gallery._conn.execute("PRAGMA busy_timeout = 50")  # do not wait the default 10 s for the other writer
    other = sqlite3.connect(svc.gallery.path, isolation_level=None)
    files = [("files", ("a.png", synth.photo_bytes(0, 1)))]
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        r = client.post("/api/people", data={"name": "ann"}, files=files)
        assert r.status_code == 503 and "busy" in r.json()["error"]
        assert check_consistent(svc) == {}  # the upload written for it was removed again
    finally:
        other.rollback()
        other.close()
    assert client.post("/api/people", data={"name": "ann"}, files=files).status_code == 201
    assert check_consistent(svc) == {"ann": 1}
