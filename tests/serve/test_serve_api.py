"""Every endpoint of the HTTP API through FastAPI's TestClient (fake detector, raw-pixel embedder, tmp gallery)."""

from __future__ import annotations

import base64
import hashlib
import io
import re

import numpy as np
import pytest
from PIL import Image

from iznet.recognize.embedder import load_embedder
from iznet.recognize.gallery import Gallery
from iznet.recognize.pipeline import rebuild_embeddings


def enrol(client, name, photos, expect=201):
    files = [("files", (f"{name}{i}.png", data, "image/png")) for i, data in enumerate(photos)]
    r = client.post("/api/people", data={"name": name}, files=files)
    assert r.status_code == expect, r.text
    return r.json()


def label(client, data, filename="photo.png", **params):
    return client.post("/api/label", params=params, files={"file": (filename, data, "image/png")})


@pytest.fixture
def three(served, synth):
    """A client with ann, bob and cy enrolled from two photos each."""
    client, svc, det = served
    for p, name in enumerate(synth.PEOPLE):
        enrol(client, name, [synth.photo_bytes(p, 1), synth.photo_bytes(p, 2)])
    return client, svc, det


def test_health_reports_models_and_empty_gallery(served):
    client, svc, _ = served
    r = client.get("/api/health")
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "ok" and h["models_loaded"] is True
    assert h["detector"] == "blobs" and h["embedder"].startswith("raw(size=16")
    assert (h["people"], h["images"]) == (0, 0)
    assert h["gallery"] == str(svc.gallery.path)
    assert h["limits"]["max_upload_bytes"] == svc.settings.max_upload_bytes
    assert any("empty" in w for w in h["warnings"])


def test_label_on_empty_gallery_finds_faces_all_unknown(served, synth):
    client, _, det = served
    photo = synth.make_photo([(0, 3, 20, 30), (1, 3, 150, 60)])
    r = label(client, synth.encode(photo))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["schema"] == "iznet-label-v1" and doc["image_size"] == [240, 160]
    assert [f["name"] for f in doc["faces"]] == ["unknown", "unknown"]
    assert sorted(f["box"][:2] for f in doc["faces"]) == [[20.0, 30.0], [150.0, 60.0]]
    assert any("empty" in w for w in doc["warnings"])
    assert det.calls == 1


def test_label_names_enrolled_people_and_returns_a_labelled_jpeg(three, synth):
    client, _, _ = three
    photo = synth.make_photo([(0, 4, 10, 20), (2, 4, 90, 40), (1, 4, 170, 100)])
    r = label(client, synth.encode(photo), filename="../../team photo.png")
    assert r.status_code == 200, r.text
    doc = r.json()
    by_x = sorted(doc["faces"], key=lambda f: f["box"][0])
    assert [f["name"] for f in by_x] == ["ann", "cy", "bob"]
    for f in doc["faces"]:
        assert 0 <= f["distance"] < f["second_distance"]
        assert f["margin"] == pytest.approx(f["second_distance"] - f["distance"], abs=2e-4)
    assert doc["source"] == "team photo.png"  # the client's path is never kept
    assert doc["image_type"] == "image/jpeg" and doc["preview_size"] == [240, 160]
    pic = Image.open(io.BytesIO(base64.b64decode(doc["image"])))
    assert pic.format == "JPEG" and pic.size == (240, 160)
    drawn = np.asarray(pic.convert("RGB")).astype(int)
    plain = label(client, synth.encode(photo), image="plain").json()
    undrawn = np.asarray(Image.open(io.BytesIO(base64.b64decode(plain["image"]))).convert("RGB")).astype(int)
    for f in doc["faces"]:  # the top edge of every box is drawn red (much redder than the photo there)
        x1, y1, x2, _ = (int(v) for v in f["box"])
        redness = [(img[y1, x1 + 2:x2 - 2, 0] - img[y1, x1 + 2:x2 - 2, 1]).mean() for img in (drawn, undrawn)]
        assert redness[0] > redness[1] + 60, redness


def test_label_image_modes(three, synth):
    client, _, _ = three
    photo = synth.make_photo([(0, 5, 50, 50)])
    data = synth.encode(photo)
    none = label(client, data, image="none").json()
    assert none["image"] is None and none["preview_size"] is None and none["faces"][0]["name"] == "ann"
    for mode, drawn in (("plain", False), ("labelled", True)):
        doc = label(client, data, image=mode).json()
        pic = np.asarray(Image.open(io.BytesIO(base64.b64decode(doc["image"]))).convert("RGB")).astype(int)
        # the plain picture is the photo itself (up to JPEG loss); the labelled one has a box and a name on it
        assert (np.abs(pic - photo).max(axis=2) > 60).sum() > 50 if drawn else np.abs(pic - photo).mean() < 3
    r = label(client, data, image="sketch")
    assert r.status_code == 400 and "image" in r.json()["error"]


def test_label_preview_is_scaled_down_but_boxes_stay_in_photo_pixels(make_app, synth):
    from fastapi.testclient import TestClient

    app, _, _ = make_app(preview_max_side=120)
    photo = synth.make_photo([(0, 1, 100, 80)], size=(240, 360))
    doc = TestClient(app).post("/api/label", files={"file": ("p.png", synth.encode(photo))}).json()
    assert doc["image_size"] == [360, 240] and doc["preview_size"] == [120, 80]
    assert doc["faces"][0]["box"] == [100.0, 80.0, 140.0, 120.0]
    assert Image.open(io.BytesIO(base64.b64decode(doc["image"]))).size == (120, 80)


def test_label_a_photo_without_faces(served, synth):
    client, _, _ = served
    doc = label(client, synth.encode(np.zeros((50, 60, 3), np.uint8))).json()
    assert doc["faces"] == [] and doc["image_size"] == [60, 50]


def test_enrol_stores_uploads_under_content_hash_names_and_can_be_rebuilt(served, synth):
    client, svc, _ = served
    photos = [synth.photo_bytes(0, 1), synth.photo_bytes(0, 2, fmt="JPEG")]
    out = enrol(client, "Ann Lee", photos)
    assert out["name"] == "Ann Lee" and out["created"] is True
    assert out["added"] == ["Ann Lee0.png", "Ann Lee1.png"]
    assert out["person"]["n_images"] == 2
    images_dir = svc.images_dir
    assert images_dir == svc.gallery.path.with_name("g_images")
    expected = {hashlib.sha256(photos[0]).hexdigest() + ".png", hashlib.sha256(photos[1]).hexdigest() + ".jpg"}
    assert {p.name for p in images_dir.iterdir()} == expected  # named by content; the JPEG sniffed as JPEG
    with Gallery(svc.gallery.path) as g:
        recs = g.images("Ann Lee")
        assert {r.path for r in recs} == {str(images_dir.resolve() / n) for n in expected}
        rep = rebuild_embeddings(g, load_embedder("raw:8"))  # re-reads the kept files, checks their hashes
        assert rep.missing == [] and rep.written == 2


def test_enrol_skips_photos_without_a_face_and_reports_them(served, synth):
    client, svc, _ = served
    blank = synth.encode(np.zeros((40, 40, 3), np.uint8))
    files = [("files", ("face.png", synth.photo_bytes(1, 1))), ("files", ("blank.png", blank))]
    r = client.post("/api/people", data={"name": "bob"}, files=files)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["added"] == ["face.png"]
    assert out["skipped"] == [{"file": "blank.png", "reason": "no face found"}]
    assert len(list(svc.images_dir.iterdir())) == 1  # the blank photo is not kept


def test_enrol_with_no_usable_face_writes_nothing(served, synth):
    client, svc, _ = served
    blank = synth.encode(np.zeros((40, 40, 3), np.uint8))
    r = client.post("/api/people", data={"name": "ghost"}, files=[("files", ("blank.png", blank))])
    assert r.status_code == 422 and "no face" in r.json()["error"]
    assert client.get("/api/people").json()["count"] == 0
    assert not svc.images_dir.exists() or list(svc.images_dir.iterdir()) == []


def test_enrol_reports_repeated_and_several_face_photos(served, synth):
    client, _, _ = served
    one = synth.photo_bytes(2, 1)
    two_faces = synth.encode(synth.make_photo([(2, 2, 10, 10), (2, 3, 120, 60)]))
    files = [("files", ("a.png", one)), ("files", ("again.png", one)), ("files", ("pair.png", two_faces))]
    out = client.post("/api/people", data={"name": "cy"}, files=files).json()
    assert out["added"] == ["a.png", "pair.png"] and out["duplicates"] == ["again.png"]
    assert out["several_faces"] == [{"file": "pair.png", "faces": 2}]


def test_enrol_reports_faces_only_the_headshot_fallback_found(tmp_path, synth, monkeypatch):
    from fastapi.testclient import TestClient

    import iznet.recognize.faces as F
    from iznet.detect.results import Detections
    from iznet.detect.settings import PostprocessConfig
    from iznet.serve.app import create_app
    from iznet.serve.service import ServeSettings

    class CanvasOnly:
        """Sees the picture's non-black part as a face (0.35) only with black all around it (a 3x canvas)."""

        config = PostprocessConfig(conf_threshold=0.3)

        def detect(self, image):
            h, w = image.shape[:2]
            ys, xs = np.nonzero(image.max(axis=2) > 0)
            box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            seen = (box[2] - box[0]) * (box[3] - box[1]) < 0.2 * h * w and self.config.conf_threshold <= 0.35
            boxes = np.asarray([box] if seen else [], np.float32).reshape(-1, 4)
            return Detections(boxes, np.full(len(boxes), 0.35, np.float32), (w, h))

    monkeypatch.setattr(F.detect_one_face, "__defaults__", ((3.0,), None, 0.5))
    app = create_app(ServeSettings(gallery=tmp_path / "g.db"), detector=CanvasOnly(), embedder=load_embedder("raw:16"))
    try:
        tight = np.random.default_rng(0).integers(30, 255, (60, 60, 3), dtype=np.uint8)
        r = TestClient(app).post("/api/people", data={"name": "dee"},
                                 files=[("files", ("tight.png", synth.encode(tight)))])
        assert r.status_code == 201, r.text
        assert r.json()["added"] == ["tight.png"] and r.json()["headshots"] == ["tight.png"]
    finally:
        app.state.service.close()


def test_people_list_is_sorted_with_counts(three):
    client, _, _ = three
    doc = client.get("/api/people").json()
    assert doc["count"] == 3
    assert [(p["name"], p["n_images"]) for p in doc["people"]] == [("ann", 2), ("bob", 2), ("cy", 2)]
    assert all(re.match(r"\d{4}-\d\d-\d\dT", p["created"]) for p in doc["people"])


def test_duplicate_name_is_409_and_changes_nothing(three, synth):
    client, svc, _ = three
    before = sorted(p.name for p in svc.images_dir.iterdir())
    for name in ("ann", "ANN", "  ann "):
        r = client.post("/api/people", data={"name": name}, files=[("files", ("x.png", synth.photo_bytes(0, 7)))])
        assert r.status_code == 409, (name, r.text)
        assert "already" in r.json()["error"]
    assert [p["n_images"] for p in client.get("/api/people").json()["people"]] == [2, 2, 2]
    assert sorted(p.name for p in svc.images_dir.iterdir()) == before  # no orphan upload


def test_add_images_to_a_person(three, synth):
    client, _, _ = three
    files = [("files", ("new.png", synth.photo_bytes(1, 6))), ("files", ("old.png", synth.photo_bytes(1, 1)))]
    r = client.post("/api/people/bob/images", files=files)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["created"] is False and out["added"] == ["new.png"] and out["duplicates"] == ["old.png"]
    assert out["person"] == {**out["person"], "name": "bob", "n_images": 3}
    r = client.post("/api/people/zed/images", files=[("files", ("z.png", synth.photo_bytes(1, 6)))])
    assert r.status_code == 404 and "zed" in r.json()["error"]


def test_rename(three):
    client, _, _ = three
    r = client.post("/api/people/ann/rename", json={"new_name": "Ann Lee"})
    assert r.status_code == 200 and r.json()["name"] == "Ann Lee" and r.json()["n_images"] == 2
    assert [p["name"] for p in client.get("/api/people").json()["people"]] == ["Ann Lee", "bob", "cy"]
    assert client.post("/api/people/Ann%20Lee/rename", json={"new_name": "ANN LEE"}).status_code == 200
    r = client.post("/api/people/bob/rename", json={"new_name": "cy"})
    assert r.status_code == 409 and "taken" in r.json()["error"]
    r = client.post("/api/people/nobody/rename", json={"new_name": "x"})
    assert r.status_code == 404
    r = client.post("/api/people/bob/rename", json={"new_name": "../x"})
    assert r.status_code == 400 and "separator" in r.json()["error"]
    r = client.post("/api/people/bob/rename", json={})
    assert r.status_code == 400 and r.json()["error"] == "new_name: is required"
    assert [p["name"] for p in client.get("/api/people").json()["people"]] == ["ANN LEE", "bob", "cy"]


def test_renamed_person_is_named_in_labels(three, synth):
    client, _, _ = three
    client.post("/api/people/cy/rename", json={"new_name": "Cyrus"})
    doc = label(client, synth.photo_bytes(2, 9), image="none").json()
    assert doc["faces"][0]["name"] == "Cyrus"


def test_delete_removes_person_and_their_uploads(three, synth):
    client, svc, _ = three
    n_files = len(list(svc.images_dir.iterdir()))
    r = client.delete("/api/people/bob")
    assert r.status_code == 200 and r.json() == {"name": "bob", "images_removed": 2}
    assert [p["name"] for p in client.get("/api/people").json()["people"]] == ["ann", "cy"]
    assert len(list(svc.images_dir.iterdir())) == n_files - 2
    doc = label(client, synth.photo_bytes(1, 9), image="none").json()
    assert doc["faces"][0]["name"] != "bob"
    r = client.delete("/api/people/bob")
    assert r.status_code == 404 and "bob" in r.json()["error"]


def test_delete_keeps_a_picture_someone_else_still_uses(served, synth):
    client, svc, _ = served
    shared = synth.photo_bytes(0, 1)
    enrol(client, "ann", [shared])
    enrol(client, "twin", [shared])
    assert client.delete("/api/people/ann").status_code == 200
    kept = list(svc.images_dir.iterdir())
    assert [p.name for p in kept] == [hashlib.sha256(shared).hexdigest() + ".png"]
    assert client.delete("/api/people/twin").status_code == 200
    assert list(svc.images_dir.iterdir()) == []


def test_changes_made_by_another_process_are_picked_up(served, synth):
    """The CLI may enrol while the server runs: the next label sees the new person."""
    from iznet.recognize.pipeline import enroll_files

    client, svc, det = served
    path = svc.gallery.path.parent / "dee.png"
    path.write_bytes(synth.photo_bytes(1, 1))
    with Gallery(svc.gallery.path) as other:
        enroll_files(other, "dee", [path], load_embedder("raw:16"), synth.BlobDetector())
    doc = label(client, synth.photo_bytes(1, 5), image="none").json()
    assert doc["faces"][0]["name"] == "dee"
    assert client.get("/api/health").json()["people"] == 1


def test_unknown_routes_and_methods_answer_json(served):
    client, _, _ = served
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.json() == {"error": "Not Found"}
    r = client.put("/api/people")
    assert r.status_code == 405 and "error" in r.json()


def test_openapi_schema_documents_the_api(served):
    client, _, _ = served
    doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    assert set(paths) == {"/api/label", "/api/people", "/api/people/{name}/images", "/api/people/{name}/rename",
                          "/api/people/{name}", "/api/health"}
    assert set(paths["/api/people"]) == {"get", "post"} and "delete" in paths["/api/people/{name}"]
    assert "multipart/form-data" in paths["/api/label"]["post"]["requestBody"]["content"]
    resp = paths["/api/label"]["post"]["responses"]
    assert {"200", "400", "413", "415", "422"} <= set(resp)
    assert resp["415"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    schemas = doc["components"]["schemas"]
    assert {"LabelOut", "FaceOut", "EnrollOut", "PeopleOut", "HealthOut", "ErrorOut"} <= set(schemas)
    assert "HTTPValidationError" not in schemas
    assert "schema" in schemas["LabelOut"]["properties"]


def test_page_and_static_files_use_no_outside_resources(served):
    client, _, _ = served
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    html = r.text
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert ref.startswith(("/", "data:")), ref
        if ref.startswith("/static/"):
            assert client.get(ref).status_code == 200, ref
    for name in ("app.js", "style.css", "index.html"):
        text = client.get(f"/static/{name}").text
        assert not re.search(r"https?://", text), f"{name} refers to an outside resource"


def test_cross_site_requests_that_change_the_gallery_are_refused(served, synth):
    client, svc, _ = served
    files = [("files", (f"a{v}.png", synth.photo_bytes(0, v), "image/png")) for v in (1, 2)]
    r = client.post("/api/people", data={"name": "eve"}, files=files,
                    headers={"Origin": "http://attacker.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["error"]
    r = client.post("/api/people", data={"name": "eve"}, files=files, headers={"Origin": "null"})
    assert r.status_code == 403
    assert client.get("/api/people").json()["count"] == 0
    # the page itself (same origin) and scripts without an Origin header may
    r = client.post("/api/people", data={"name": "ann"}, files=files, headers={"Origin": "http://testserver"})
    assert r.status_code == 201, r.text
    r = client.delete("/api/people/ann", headers={"Referer": "http://evil.example/page"})
    assert r.status_code == 403
    # labelling changes nothing: allowed from anywhere
    r = client.post("/api/label", files={"file": ("p.png", synth.photo_bytes(0, 5), "image/png")},
                    headers={"Origin": "http://other.example"})
    assert r.status_code == 200


def test_token_guards_changes(make_app, synth):
    from fastapi.testclient import TestClient

    app, _, _ = make_app(token="s3cret")
    client = TestClient(app)
    files = [("files", ("a.png", synth.photo_bytes(0, 1), "image/png"))]
    r = client.post("/api/people", data={"name": "ann"}, files=files)
    assert r.status_code == 403 and "token" in r.json()["error"]
    r = client.post("/api/people", data={"name": "ann"}, files=files, headers={"X-Iznet-Token": "wrong"})
    assert r.status_code == 403
    r = client.post("/api/people", data={"name": "ann"}, files=files, headers={"Authorization": "Bearer s3cret"})
    assert r.status_code == 201, r.text
    assert client.get("/api/people").json()["count"] == 1  # reading needs no token


def test_startup_sweeps_uploads_no_gallery_row_refers_to(make_app, synth, tmp_path):
    import os
    import time

    from fastapi.testclient import TestClient

    app, svc, _ = make_app()
    client = TestClient(app)
    enrol(client, "ann", [synth.photo_bytes(0, 1)])
    kept = list(svc.images_dir.iterdir())
    old = time.time() - 3600
    orphans = [svc.images_dir / ("ab" * 32 + ".png"), svc.images_dir / ".x.png.tmp"]
    young = svc.images_dir / ("cd" * 32 + ".png")
    for p in orphans + [young]:
        p.write_bytes(b"left by a killed enrolment")
    for p in orphans + kept:
        os.utime(p, (old, old))
    _, svc2, _ = make_app()
    assert svc2.swept == 2
    assert sorted(svc2.images_dir.iterdir()) == sorted(kept + [young])  # the enrolled photo and a fresh file stay


def test_no_face_error_names_the_uploaded_file(served):
    client, _, _ = served
    blank = np.zeros((60, 60, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(blank).save(buf, format="PNG")
    r = client.post("/api/people", data={"name": "ghost"}, files=[("files", ("my holiday.png", buf.getvalue(),
                                                                              "image/png"))])
    assert r.status_code == 422 and "my holiday.png" in r.json()["error"]
    assert not re.search(r"[0-9a-f]{64}", r.json()["error"])


def test_trailing_slash_and_bad_json_get_json_errors(served):
    client, _, _ = served
    r = client.delete("/api/people/", follow_redirects=False)
    assert r.status_code == 404 and "error" in r.json()
    r = client.post("/api/people/ann/rename", content=b"{bad", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
