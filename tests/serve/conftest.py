"""Fixtures for the web service tests: synthetic "faces", a blob-finding fake detector, an app on a tmp gallery.

A face is a smooth random colour pattern (values 40..255) owned by one person; a photo is a black canvas
with faces pasted at known places, encoded as PNG (lossless). The fake detector finds the non-black blobs,
so enrolment and labelling work end to end with the raw-pixel embedder and no trained model.
"""

from __future__ import annotations

import io
import threading

import cv2
import numpy as np
import pytest
from PIL import Image

from iznet.detect.results import Detections
from iznet.recognize.embedder import load_embedder

FACE = 40
PEOPLE = ("ann", "bob", "cy")


def face_pattern(person: int, variant: int = 0) -> np.ndarray:
    """(FACE, FACE, 3) uint8 pattern of ``person``; variants differ by a little pixel noise."""
    base = np.random.default_rng(1000 + person).uniform(40, 255, size=(5, 5, 3)).astype(np.float32)
    img = cv2.resize(base, (FACE, FACE), interpolation=cv2.INTER_CUBIC)
    jitter = np.random.default_rng(10_000 * person + variant + 1).normal(0, 4.0, img.shape)
    return np.clip(img + jitter * (variant > 0), 40, 255).astype(np.uint8)


def make_photo(faces: list[tuple[int, int, int, int]], size: tuple[int, int] = (160, 240)) -> np.ndarray:
    """Paste ``(person, variant, x, y)`` faces on a black (H, W) canvas."""
    img = np.zeros((*size, 3), np.uint8)
    for person, variant, x, y in faces:
        img[y:y + FACE, x:x + FACE] = face_pattern(person, variant)
    return img


def encode(img: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt)
    return buf.getvalue()


def photo_bytes(person: int, variant: int, fmt: str = "PNG") -> bytes:
    """A one-face photo of ``person`` (its place moves with the variant)."""
    k = variant % 8
    return encode(make_photo([(person, variant, 20 + 15 * k, 30 + 10 * k)]), fmt)


class BlobDetector:
    """Finds the non-black blobs of at least 100 pixels; score grows with the blob's area. Thread-safe."""

    name = "blobs"

    def __init__(self):
        self.calls = 0
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> Detections:
        with self._lock:
            self.calls += 1
        mask = (image.max(axis=2) > 20).astype(np.uint8)
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        boxes = [(x, y, x + w, y + h) for x, y, w, h, area in stats[1:] if area >= 100]
        scores = [min(0.99, 0.5 + (b[2] - b[0]) * (b[3] - b[1]) / 10_000) for b in boxes]
        return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32),
                          (image.shape[1], image.shape[0]))


@pytest.fixture
def make_app(tmp_path):
    """``make_app(**settings) -> (app, service, detector)`` on ``tmp_path/g.db`` with raw:16 and blobs."""
    from iznet.serve.app import create_app
    from iznet.serve.service import ServeSettings

    made = []

    def make(**overrides):
        settings = ServeSettings(**{"gallery": tmp_path / "g.db", **overrides})
        det = BlobDetector()
        app = create_app(settings, detector=det, embedder=load_embedder("raw:16"))
        made.append(app.state.service)
        return app, app.state.service, det

    yield make
    for svc in made:
        svc.close()


@pytest.fixture
def served(make_app):
    """``(client, service, detector)`` with default limits."""
    from fastapi.testclient import TestClient

    app, svc, det = make_app()
    return TestClient(app), svc, det


class _Synth:
    """The helpers above for test modules (they cannot import a conftest)."""

    FACE = FACE
    PEOPLE = PEOPLE
    face_pattern = staticmethod(face_pattern)
    make_photo = staticmethod(make_photo)
    encode = staticmethod(encode)
    photo_bytes = staticmethod(photo_bytes)
    BlobDetector = BlobDetector


@pytest.fixture
def synth() -> type[_Synth]:
    return _Synth


@pytest.fixture
def live_server(make_app):
    """``live_server(**settings) -> (base_url, service)``: the app under uvicorn on a free loopback port,
    in a thread, stopped after the test."""
    import socket
    import time

    import uvicorn

    servers = []

    def start(**overrides):
        app, svc, _ = make_app(**overrides)
        # IPPROTO_TCP so asyncio sets TCP_NODELAY on the accepted sockets (as on uvicorn's own sockets)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        servers.append((server, thread, sock))
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}", svc

    yield start
    for server, thread, sock in servers:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
