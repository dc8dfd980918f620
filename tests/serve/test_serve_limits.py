"""Limits and validation: oversized bodies, decompression bombs, files that are not images, bad names."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient

from iznet.serve.service import ServeError, ServeSettings, clean_filename, sniff_image


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, followed by a few bytes of data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def assert_error(r, status, *words):
    assert r.status_code == status, (r.status_code, r.text)
    msg = r.json()["error"]
    for w in words:
        assert w in msg, (w, msg)
    return msg


@pytest.fixture
def small(make_app):
    """A client whose limits are tiny: 64 KiB bodies, 100k pixels, 3 files."""
    app, svc, det = make_app(max_upload_bytes=64 * 1024, max_pixels=100_000, max_files=3)
    return TestClient(app), svc, det


def test_oversized_upload_is_413_before_anything_runs(small):
    client, svc, det = small
    big = b"\xff\xd8\xff" + bytes(70 * 1024)
    r = client.post("/api/label", files={"file": ("big.jpg", big, "image/jpeg")})
    assert_error(r, 413, "larger than the limit of 64 KiB")
    r = client.post("/api/people", data={"name": "ann"}, files=[("files", ("big.jpg", big, "image/jpeg"))])
    assert r.status_code == 413
    assert det.calls == 0 and len(svc.gallery) == 0


def test_oversized_streamed_upload_without_content_length_is_413(small):
    client, _, det = small
    boundary = "xyz"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()

    def body():
        yield head
        for _ in range(100):  # 100 x 8 KiB = 800 KiB, far over the limit
            yield bytes(8192)
        yield f"\r\n--{boundary}--\r\n".encode()

    r = client.post("/api/label", content=body(), headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "larger than the limit")
    assert det.calls == 0


def test_decompression_bomb_header_is_refused_and_the_server_goes_on(served, synth):
    client, _, det = served
    bomb = png_claiming(50_000, 50_000)
    assert len(bomb) < 200
    msg = assert_error(client.post("/api/label", files={"file": ("bomb.png", bomb, "image/png")}), 413)
    assert "bomb" in msg or "pixels" in msg
    r = client.post("/api/people", data={"name": "ann"}, files=[("files", ("bomb.png", bomb, "image/png"))])
    assert r.status_code == 413
    assert det.calls == 0
    ok = client.post("/api/label", files={"file": ("ok.png", synth.photo_bytes(0, 1))})
    assert ok.status_code == 200 and len(ok.json()["faces"]) == 1


def test_image_over_the_pixel_limit_is_413_before_decoding(small, synth):
    client, _, det = small
    data = synth.encode(np.zeros((400, 300, 3), np.uint8))  # 120,000 pixels, a small file
    assert len(data) < 64 * 1024
    assert_error(client.post("/api/label", files={"file": ("wide.png", data)}), 413, "400 = 120,000 pixels", "100,000")
    assert det.calls == 0


def test_text_file_named_jpg_is_415(served):
    client, svc, _ = served
    text = b"this is not a photo, whatever the name and content type say\n" * 4
    assert_error(client.post("/api/label", files={"file": ("me.jpg", text, "image/jpeg")}), 415, "me.jpg", "not an image")
    r = client.post("/api/people", data={"name": "ann"}, files=[("files", ("me.jpg", text, "image/jpeg"))])
    assert_error(r, 415, "me.jpg")
    assert len(svc.gallery) == 0


def test_an_image_format_not_accepted_is_415(served, synth):
    client, _, _ = served
    ico = synth.encode(np.full((16, 16, 3), 90, np.uint8), fmt="ICO")
    assert_error(client.post("/api/label", files={"file": ("x.png", ico, "image/png")}), 415, "ICO")


def test_empty_and_truncated_files(served, synth):
    client, svc, _ = served
    assert_error(client.post("/api/label", files={"file": ("e.png", b"", "image/png")}), 400, "empty")
    jpeg = synth.encode(synth.make_photo([(0, 1, 20, 20)]), fmt="JPEG")
    r = client.post("/api/label", files={"file": ("cut.jpg", jpeg[: len(jpeg) * 2 // 3], "image/jpeg")})
    assert_error(r, 422, "cut.jpg")
    # one bad file in an enrolment: nothing is written, not even the good photo
    files = [("files", ("good.png", synth.photo_bytes(0, 1))), ("files", ("cut.jpg", jpeg[: len(jpeg) * 2 // 3]))]
    assert_error(client.post("/api/people", data={"name": "ann"}, files=files), 422, "cut.jpg")
    assert len(svc.gallery) == 0 and not svc.images_dir.exists()


@pytest.mark.parametrize("name, words", [
    ("../x", ["separator"]),
    ("a\\b", ["separator"]),
    ("", ["required"]),  # an empty form field never reaches the gallery's check
    ("   ", ["empty"]),
    ("x" * 200, ["200 characters", "64"]),
    (".hidden", ["dot"]),
    ("unknown", ["reserved"]),
    ("tab\there", ["control"]),
])
def test_bad_names_are_400_and_write_nothing(served, synth, name, words):
    client, svc, _ = served
    r = client.post("/api/people", data={"name": name}, files=[("files", ("a.png", synth.photo_bytes(0, 1)))])
    assert_error(r, 400, *words)
    assert len(svc.gallery) == 0 and not svc.images_dir.exists()


def test_bad_names_in_the_path(served, synth):
    client, svc, _ = served
    client.post("/api/people", data={"name": "ann"}, files=[("files", ("a.png", synth.photo_bytes(0, 1)))])
    assert client.delete("/api/people/..%2Fann").status_code == 404  # a '/' never reaches a name
    assert_error(client.delete("/api/people/" + "x" * 200), 400, "64")
    assert_error(client.post("/api/people/unknown/rename", json={"new_name": "b"}), 400, "reserved")
    assert [p.name for p in svc.people()] == ["ann"]


def test_missing_fields_and_too_many_files(small, synth):
    client, _, _ = small
    assert_error(client.post("/api/label"), 400, "file: is required")
    assert_error(client.post("/api/people", data={"name": "ann"}), 400, "files: is required")
    files = [("files", (f"{i}.png", synth.photo_bytes(0, i))) for i in range(4)]
    assert_error(client.post("/api/people", data={"name": "ann"}, files=files), 400, "4 photos", "limit is 3")


def test_sniff_image_and_clean_filename(synth):
    assert sniff_image(synth.photo_bytes(0, 1, fmt="JPEG"), "a", 10**6) == ("JPEG", (240, 160))
    assert sniff_image(synth.photo_bytes(0, 1, fmt="WEBP"), "a", 10**6)[0] == "WEBP"
    with pytest.raises(ServeError) as e:
        sniff_image(png_claiming(5000, 5000), "big.png", 10**6)
    assert e.value.status == 413
    with pytest.raises(ServeError) as e:
        sniff_image(b"GIF89a" + bytes(3), "broken.gif", 10**6)
    assert e.value.status in (415, 422)
    assert clean_filename("C:\\Users\\me\\face.jpg") == "face.jpg"
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("a\x00b\nc.png") == "abc.png"
    assert clean_filename(None) == "upload" and clean_filename("x" * 300) == "x" * 100


@pytest.mark.parametrize("bad", [{"max_upload_bytes": 0}, {"max_files": -1}, {"max_pixels": 1.5},
                                 {"jpeg_quality": 100}, {"decode_slots": True}])
def test_settings_are_checked(bad):
    with pytest.raises(ServeError) as e:
        ServeSettings(**bad)
    assert next(iter(bad)) in str(e.value)
