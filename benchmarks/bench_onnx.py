"""PyTorch vs onnxruntime on the bundled models, measured in the same run (interleaved rounds).

What is timed (CPU, ``--threads`` threads for both runtimes; onnxruntime gets ``intra_op_num_threads``):

- ``embedder_b1`` / ``embedder_b32``: ``Embedder.embed`` on random uint8 96 px crops, batch 1 and 32
  (preprocessing, the network with the shipped flip TTA, normalisation): crops per second.
- ``detector_net``: the detector network alone on one (1, 3, 416, 416) input: images per second.
- ``detector_detect``: ``detect(photo)`` on the demo photo (letterbox, network, decode, NMS) with the detector's
  default test-time augmentation (``full``: four passes, fused): images per second.
- ``label``: ``Pipeline.label`` on the demo photo with the demo gallery (detect, crop, embed 6 faces, match):
  photos per second and milliseconds per photo, and the time to build each pipeline (models loaded from the
  checkpoints / from the exported files).

Each measurement repeats the call for at least ``--min-time`` seconds; ``--rounds`` rounds alternate the two
runtimes and the median round is reported (the machine may be shared), with the process's CPU time per item
(all its threads), the steadier number on a busy machine. The labels of both runtimes on the
demo photo are compared too (same names; largest box difference in pixels).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_onnx.py --threads 1 \\
        --out benchmarks/results/bench_onnx_cpu_1thread.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch


def timed(fn: Callable[[], Any], items: int, min_time: float) -> tuple[float, float]:
    """(items per second, process CPU ms per item) of ``fn`` (each call handles ``items``), called for at least
    ``min_time`` s. CPU time counts every thread of the process; on a shared machine it is the steadier number."""
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            return n * items / elapsed, 1000.0 * (time.process_time() - c0) / (n * items)


def compare(name: str, fns: dict[str, Callable[[], Any]], items: int, rounds: int, min_time: float,
            unit: str = "items/s") -> dict[str, Any]:
    """Interleaved rounds of each runtime; medians, all rounds and the ORT/torch ratio."""
    for fn in fns.values():  # warm-up (first-call allocations, ORT graph optimisation already done at load)
        fn()
    per: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            rate, cpu_ms = timed(fn, items, min_time)
            per[key].append(rate)
            cpu[key].append(cpu_ms)
    med = {k: statistics.median(v) for k, v in per.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    out = {"unit": unit, "torch": round(med["torch"], 2), "onnx": round(med["onnx"], 2),
           "ratio_onnx_over_torch": round(med["onnx"] / med["torch"], 3),
           "cpu_ms_per_item": {k: round(v, 2) for k, v in med_cpu.items()},
           "cpu_ratio_torch_over_onnx": round(med_cpu["torch"] / med_cpu["onnx"], 3),
           "rounds": {k: [round(x, 2) for x in v] for k, v in per.items()}}
    print(f"{name:<16} torch {med['torch']:8.1f}  onnx {med['onnx']:8.1f} {unit:<9}"
          f" ORT/torch {med['onnx'] / med['torch']:5.2f} | cpu ms/item torch {med_cpu['torch']:7.2f}"
          f" onnx {med_cpu['onnx']:7.2f}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="threads for torch and onnxruntime (default 1)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds per measurement (median reported)")
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds per timing")
    ap.add_argument("--onnx-dir", default=None, help="ONNX cache to export into (default: a temporary folder)")
    ap.add_argument("--out", type=Path, default=None, help="JSON file to write")
    args = ap.parse_args(argv)

    import iznet.export.onnx_runtime as rt
    from iznet.data.images import load_image
    from iznet.detect.detector import YoloFaceDetector
    from iznet.loading import load_detector, load_embedder
    from iznet.recognize import pipeline as pl
    from iznet.utils.io import write_json

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    tmp = tempfile.TemporaryDirectory(prefix="bench-onnx-")
    onnx_dir = args.onnx_dir or tmp.name
    # export (or reuse) the bundled models; timings below never include it
    rt.cached_export("default-embedder", "embedder", onnx_dir)
    rt.cached_export("default-detector", "detector", onnx_dir)

    emb_t = load_embedder(device="cpu")
    emb_o = load_embedder(spec=None, runtime="onnx", onnx_dir=onnx_dir, threads=args.threads)
    det_t = YoloFaceDetector.from_checkpoint(pl.default_detector_spec(), device="cpu")
    det_o = load_detector(spec=None, runtime="onnx", onnx_dir=onnx_dir, threads=args.threads)
    size = int(emb_t.input_size)
    rng = np.random.default_rng(0)
    results: dict[str, Any] = {}

    for batch in (1, 32):
        crops = torch.from_numpy(rng.integers(0, 256, (batch, 3, size, size), dtype=np.uint8))
        results[f"embedder_b{batch}"] = compare(
            f"embedder b={batch}", {"torch": lambda c=crops: emb_t.embed(c), "onnx": lambda c=crops: emb_o.embed(c)},
            batch, args.rounds, args.min_time, "crops/s")

    x = torch.rand(1, 3, det_t.model.image_size, det_t.model.image_size, generator=torch.Generator().manual_seed(0))
    xn = x.numpy()

    def torch_net() -> Any:
        with torch.no_grad():
            return det_t.model(x)

    results["detector_net"] = compare("detector net 416", {"torch": torch_net, "onnx": lambda: det_o.forward(xn)},
                                      1, args.rounds, args.min_time, "images/s")
    assets = pl.demo_assets()
    photo = load_image(assets.photo)
    results["detector_detect"] = compare("detect demo", {"torch": lambda: det_t.detect(photo),
                                                         "onnx": lambda: det_o.detect(photo)},
                                         1, args.rounds, args.min_time, "images/s")

    build: dict[str, float] = {}
    pipes = {}
    for key in ("torch", "onnx"):
        t0 = time.perf_counter()
        det = load_detector(spec=None, runtime=key, onnx_dir=onnx_dir, threads=args.threads)
        emb = load_embedder(spec=None, runtime=key, onnx_dir=onnx_dir, device="cpu", threads=args.threads)
        pipes[key] = pl.Pipeline(det, emb, assets.gallery)
        build[key] = round(time.perf_counter() - t0, 3)
    lab = compare("label demo", {k: (lambda p=p: p.label(photo)) for k, p in pipes.items()}, 1, args.rounds,
                  args.min_time, "photos/s")
    lab["ms_per_photo"] = {k: round(1000.0 / lab[k], 1) for k in ("torch", "onnx")}
    lab["pipeline_build_s"] = build
    print(f"{'label demo':<16} torch {lab['ms_per_photo']['torch']:.1f} ms, onnx {lab['ms_per_photo']['onnx']:.1f} ms"
          f" per photo; pipeline build torch {build['torch']:.2f} s, onnx {build['onnx']:.2f} s")
    results["label"] = lab

    rt_res, ro_res = pipes["torch"].label(photo), pipes["onnx"].label(photo)
    same_names = rt_res.names == ro_res.names
    box_diff = float(np.abs(rt_res.boxes - ro_res.boxes).max()) if len(rt_res.faces) == len(ro_res.faces) else None
    results["parity"] = {"faces": len(rt_res.faces), "same_names": same_names, "max_box_diff_px": box_diff}
    print(f"parity on the demo photo: {len(rt_res.faces)} faces, same names {same_names}, max box difference"
          f" {box_diff} px")

    doc = {
        "benchmark": "bench_onnx",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "threads": args.threads,
        "env": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "loadavg_start": [round(v, 2) for v in load_start],
                    "loadavg_end": [round(v, 2) for v in os.getloadavg()]},
        "versions": {"torch": torch.__version__, "onnxruntime": rt.require_onnxruntime().__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "models": {"embedder": emb_o.name, "embedder_tta": emb_o.tta, "embedder_input": size,
                   "detector": det_o.name, "detector_input": det_o.image_size},
        "rounds": args.rounds, "min_time_s": args.min_time,
        "results": results,
    }
    if args.out:
        write_json(args.out, doc)
        print(f"wrote {args.out}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
