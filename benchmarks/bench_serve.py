"""Bounded load test of the web service (``iznet serve``) on loopback.

The server runs in its own process (uvicorn, one worker, as ``iznet serve`` runs it) on a tmp gallery with
a fake detector that finds the synthetic faces of the photos (non-black blobs) and the raw-pixel embedder,
so this measures the service itself (HTTP, multipart parsing, sniffing and decoding, locking, the gallery,
encoding the labelled JPEG), not a face model. Steps:

1. enrol ``--people`` people through the API (2 photos each);
2. send ``--requests`` requests from ``--threads`` client threads (one keep-alive connection each), in a
   seeded random order: mostly ``POST /api/label`` of a group photo of the enrolled people, plus
   enrolments of new people (``--enrol-share``) and ``GET /api/people`` (``--list-share``);
   With ``--hostile-share``, that share are hostile: a 1x39,000,000 PNG and a 13,000x13,000 PNG (75 and
   164 KB files), garbage bytes, and a cross-site enrolment (``Origin: http://attacker.example``);
3. check: every normal request answered 2xx and every hostile one 4xx, every label named every face right,
   and the gallery is intact
   (SQLite integrity check, one embedding per image, every enrolled person with their 2 images, the uploads
   folder holding exactly the files the gallery refers to).

Prints latency percentiles per request kind and exits 1 if any check fails.

    .venv/bin/python benchmarks/bench_serve.py --requests 200 --threads 8
    .venv/bin/python benchmarks/bench_serve.py --requests 200 --threads 8 --hostile-share 0.2
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import random
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

FACE = 48


def face_pattern(person: int, variant: int) -> np.ndarray:
    """(FACE, FACE, 3) uint8 smooth colour pattern of ``person`` with a little per-variant noise."""
    import cv2

    base = np.random.default_rng(1000 + person).uniform(40, 255, size=(5, 5, 3)).astype(np.float32)
    img = cv2.resize(base, (FACE, FACE), interpolation=cv2.INTER_CUBIC)
    noise = np.random.default_rng(7919 * person + variant).normal(0, 4.0, img.shape)
    return np.clip(img + noise, 40, 255).astype(np.uint8)


def photo(people: list[int], variant: int, size: tuple[int, int]) -> bytes:
    """A JPEG of ``size`` (H, W): dark canvas, one face per person, spread left to right."""
    from PIL import Image

    h, w = size
    img = np.zeros((h, w, 3), np.uint8)
    step = w // (len(people) + 1)
    for i, p in enumerate(people):
        x, y = step * (i + 1) - FACE // 2, h // 2 - FACE // 2 + (i % 2) * FACE
        img[y:y + FACE, x:x + FACE] = face_pattern(p, variant)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


class BlobDetector:
    """Fake detector: the non-black blobs of at least 400 pixels are the faces."""

    name = "blobs"

    def detect(self, image: np.ndarray):
        import cv2

        from iznet.detect.results import Detections

        mask = (image.max(axis=2) > 24).astype(np.uint8)
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        boxes = [(x, y, x + w, y + h) for x, y, w, h, area in stats[1:] if area >= 400]
        return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32),
                          (image.shape[1], image.shape[0]))


def serve(gallery: str, embedder: str, port_queue) -> None:
    """Server process: the app on a free loopback port (sent back through ``port_queue``)."""
    import logging

    import torch
    import uvicorn

    from iznet.recognize.embedder import load_embedder
    from iznet.serve.app import create_app
    from iznet.serve.service import ServeSettings

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    app = create_app(ServeSettings(gallery=Path(gallery), threshold=0.5), detector=BlobDetector(),
                     embedder=load_embedder(embedder))
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only for that proto, and
    # without it every keep-alive request waits ~40 ms for a delayed ACK (uvicorn's own sockets have it)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port_queue.put(sock.getsockname()[1])
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


def png_bytes(w: int, h: int) -> bytes:
    """A small PNG file of a big (w x h) black picture."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (w, h)).save(buf, "PNG")
    return buf.getvalue()


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"n": len(a), "p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def check_gallery(gallery: Path, expected: dict[str, int]) -> list[str]:
    """Problems found in the gallery after the run (empty: intact)."""
    from iznet.recognize.gallery import Gallery
    from iznet.serve.service import images_dir_for

    problems = []
    with sqlite3.connect(gallery) as con:
        if con.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            problems.append("SQLite integrity check failed")
        n = con.execute("SELECT COUNT(*) FROM images i WHERE NOT EXISTS "
                        "(SELECT 1 FROM embeddings e WHERE e.image_id = i.id)").fetchone()[0]
        if n:
            problems.append(f"{n} images without an embedding")
    with Gallery(gallery) as g:
        counts = {p.name: p.n_images for p in g.people()}
        referenced = {r.path for r in g.images()}
    if counts != expected:
        problems.append(f"people and image counts differ from the enrolments: {len(counts)} people,"
                        f" expected {len(expected)}")
    folder = images_dir_for(gallery)
    on_disk = {str(p.resolve()) for p in folder.iterdir()}
    if on_disk != referenced:
        problems.append(f"uploads folder: {len(on_disk - referenced)} orphan files,"
                        f" {len(referenced - on_disk)} missing files")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--people", type=int, default=4, help="people enrolled before the load")
    ap.add_argument("--enrol-share", type=float, default=0.05, help="share of requests that enrol a new person")
    ap.add_argument("--list-share", type=float, default=0.05, help="share of requests that list the people")
    ap.add_argument("--size", default="480x640", help="photo size HxW")
    ap.add_argument("--image", default="labelled", choices=["labelled", "plain", "none"],
                    help="picture asked back from /api/label")
    ap.add_argument("--embedder", default="raw:32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hostile-share", type=float, default=0.0,
                    help="share of requests that are hostile: a 1x39,000,000 PNG, a 13,000x13,000 PNG, garbage "
                         "bytes, a cross-site enrolment (each must be refused with a 4xx, without slowing the rest)")
    ap.add_argument("--json", type=Path, help="write the results here too")
    args = ap.parse_args(argv)

    import httpx

    size = tuple(int(v) for v in args.size.lower().split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    gallery = tmp / "gallery.db"
    ctx = mp.get_context("spawn")
    ports = ctx.Queue()
    server = ctx.Process(target=serve, args=(str(gallery), args.embedder, ports), daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{ports.get(timeout=120)}"
        for _ in range(600):
            try:
                if httpx.get(f"{url}/api/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        expected: dict[str, int] = {}
        with httpx.Client(base_url=url, timeout=120) as c:
            for p in range(args.people):
                files = [("files", (f"p{p}_{v}.jpg", photo([p], v, size), "image/jpeg")) for v in (1, 2)]
                r = c.post("/api/people", data={"name": f"person {p}"}, files=files)
                r.raise_for_status()
                expected[f"person {p}"] = 2

        rng = random.Random(args.seed)
        n_enrol = round(args.requests * args.enrol_share)
        n_list = round(args.requests * args.list_share)
        n_hostile = round(args.requests * args.hostile_share)
        jobs = (["enrol"] * n_enrol + ["list"] * n_list + ["hostile"] * n_hostile
                + ["label"] * (args.requests - n_enrol - n_list - n_hostile))
        rng.shuffle(jobs)
        group = list(range(min(args.people, 3)))
        label_photos = [photo(group, 10 + v, size) for v in range(8)]
        truth = [f"person {p}" for p in group]
        results: list[tuple[str, int, float, str]] = []
        lock = threading.Lock()
        thin, huge = png_bytes(1, 39_000_000), png_bytes(13_000, 13_000)
        hostile = [
            ("thin", lambda c, i: c.post("/api/label", files={"file": (f"t{i}.png", thin, "image/png")})),
            ("huge", lambda c, i: c.post("/api/label", files={"file": (f"h{i}.png", huge, "image/png")})),
            ("garbage", lambda c, i: c.post("/api/label", files={"file": (f"x{i}.jpg", os.urandom(5000),
                                                                           "image/jpeg")})),
            ("cross-site", lambda c, i: c.post("/api/people", data={"name": f"evil {i}"},
                                               files=[("files", (f"e{i}.jpg", photo([7], 1, size), "image/jpeg"))],
                                               headers={"Origin": "http://attacker.example"})),
        ]
        it = iter(enumerate(jobs))

        def worker() -> None:
            with httpx.Client(base_url=url, timeout=120) as c:
                while True:
                    with lock:
                        nxt = next(it, None)
                    if nxt is None:
                        return
                    i, kind = nxt
                    note = ""
                    t0 = time.perf_counter()
                    if kind == "label":
                        r = c.post(f"/api/label?image={args.image}",
                                   files={"file": (f"g{i}.jpg", label_photos[i % 8], "image/jpeg")})
                    elif kind == "enrol":
                        pid = 1000 + i
                        files = [("files", (f"n{i}_{v}.jpg", photo([pid], v, size), "image/jpeg")) for v in (1, 2)]
                        r = c.post("/api/people", data={"name": f"new {i}"}, files=files)
                    elif kind == "hostile":
                        what = hostile[i % len(hostile)]
                        kind = f"hostile:{what[0]}"
                        r = what[1](c, i)
                    else:
                        r = c.get("/api/people")
                    ms = 1000 * (time.perf_counter() - t0)
                    if kind == "label" and r.status_code == 200:
                        names = [f["name"] for f in sorted(r.json()["faces"], key=lambda f: f["box"][0])]
                        note = "" if names == truth else f"named {names}, expected {truth}"
                    with lock:
                        results.append((kind, r.status_code, ms, note))
                        if kind == "enrol" and r.status_code == 201:
                            expected[f"new {i}"] = 2

        t0 = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(args.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        problems = check_gallery(gallery, expected)
    finally:
        server.terminate()
        server.join(timeout=10)

    # hostile requests must be refused (4xx), everything else must succeed
    errors = [(k, s) for k, s, _, _ in results if (k.startswith("hostile") and not 400 <= s < 500)
              or (not k.startswith("hostile") and not 200 <= s < 300)]
    wrong = [n for _, _, _, n in results if n]
    kinds = ["label", "enrol", "list"] + sorted({k for k, _, _, _ in results if k.startswith("hostile")})
    stats = {k: percentiles([ms for kk, _, ms, _ in results if kk == k]) for k in kinds
             if any(kk == k for kk, _, _, _ in results)}
    refused = {k: sorted({s for kk, s, _, _ in results if kk == k}) for k in kinds if k.startswith("hostile")}
    stats["all"] = percentiles([ms for _, _, ms, _ in results])
    print(f"{len(results)} requests from {args.threads} threads in {wall:.1f} s ({len(results) / wall:.1f} req/s);"
          f" photo {size[0]}x{size[1]}, image={args.image}, embedder {args.embedder}, fake detector")
    print(f"{'kind':<18} {'n':>4} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for k, s in stats.items():
        print(f"{k:<18} {s['n']:>4} {s['p50']:>8.1f} {s['p90']:>8.1f} {s['p99']:>8.1f} {s['max']:>8.1f}"
              + (f"  status {refused[k]}" if k in refused else ""))
    print(f"errors: {len(errors)}; wrong names: {len(wrong)}; gallery: "
          + ("intact" if not problems else "; ".join(problems))
          + f" ({len(expected)} people)")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "wall_s": wall,
                                         "latency_ms": stats, "hostile_status": refused, "errors": len(errors), "wrong_names": len(wrong),
                                         "gallery_problems": problems}, indent=2) + "\n")
    return 1 if errors or wrong or problems else 0


if __name__ == "__main__":
    sys.exit(main())
