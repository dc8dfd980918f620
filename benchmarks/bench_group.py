"""End-to-end results of the system: a group set and the latency of labelling a photo, iznet next to dlib.

Measured in one run, in one process, on the same pictures:

1. **Group accuracy** (:func:`iznet.eval.group.evaluate_group`): the first ``--enroll`` pictures of every
   person (name order) are enrolled into an empty gallery through the pipeline, every other picture is
   labelled by the whole pipeline, and the most confident face's answer is scored correct / wrong / unknown /
   no face. Three modes, for both systems:

   - ``detect``: the full pipeline. The group pictures are tight face crops (glint24: 112x112 aligned faces),
     so every picture is centred on a black canvas ``--pad`` times its size before detection (what a user
     does with a crop: give the detector some background); the boxes map back to the picture and the face
     is cut from it as usual (black outside, as the canvas would give);
   - ``crop``: detection bypassed, the picture's centre square is the face (as ``iznet enroll --no-detect``);
   - ``group``: enrolment as in ``detect``; the probes are labelled nine to a grey "group photo" of side
     3 x ``--spread`` x 112 pixels, each picture at 112 pixels in its own cell and scored by the face found in
     it (:class:`iznet.eval.group.GroupPhotos`): faces as sharp as before but small in the detector's view
     (at spread 4 a face is about 27 of its 416 input pixels), as in a photo of many people.

   Systems: **iznet** = the bundled detector and embedder, medoid prototypes, the bundled calibrated
   unknown-face threshold (``assets.json``); **dlib** = :mod:`iznet.reference.dlib_ref` (HOG detector with
   one upsampling, 5-point landmarks, ResNet descriptor), medoid prototypes, threshold 0.6, through the same
   pipeline, gallery and matcher. Shares are also given over the people who are in LFW and those who are not
   (``--lfw``): the bundled embedder was trained on LFW people, so those are not unseen for it.

2. **Latency** of labelling one 640x480 photo with several faces (the bundled demo collage resized to
   640x427 and centred on a black 640x480 canvas; built at run time): the pipeline call (detect, crop and
   embed, match, draw) and its stages, median over ``--repeats`` after warm-up, with torch/OpenCV set to
   each of ``--latency-threads``; dlib's pipeline on the same photo (dlib's own threading, reported as CPU
   time / wall time), and the ratio iznet / dlib. Optionally (``--cli-runs``) the wall time of the whole
   ``iznet label`` command, process start included.

The dlib column is skipped, with a note, when dlib is not installed (``pip install 'iznet[dlib]'``).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_group.py --data ../shared/data/glint24 \\
        --out benchmarks/results/bench_group.json --md benchmarks/results/bench_group.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch

from iznet.data.images import load_image
from iznet.eval.group import (GroupPhotos, PaddedDetector, WholeImageDetector, bundled_threshold, evaluate_group,
                              group_root, split_group)
from iznet.loading import load_detector, load_embedder
from iznet.recognize import pipeline as pl
from iznet.recognize.gallery import Gallery
from iznet.utils.io import atomic_path, write_json

DEMO_TRAINING_EXCLUDED = ("George_W_Bush", "Colin_Powell", "Tony_Blair", "Donald_Rumsfeld", "Gerhard_Schroeder")


# ---------------------------------------------------------------------------------------------- helpers
def set_threads(n: int) -> None:
    torch.set_num_threads(n)
    cv2.setNumThreads(n)


def collection_train_people(collection: Path, people: list[str]) -> list[str]:
    """The group's people that a training collection trains on (named identities of its ``train`` part)."""
    import csv

    from iznet.data.collection import normalise_name

    table = collection / "identities.csv"
    if not table.is_file():
        sys.exit(f"--collection {collection}: no identities.csv there (a folder written by `iznet data build`)")
    with open(table, newline="") as f:
        train = {normalise_name(r["name"]) for r in csv.DictReader(f) if r.get("name") and r.get("part") == "train"}
    return [p for p in people if normalise_name(p) in train]


def lfw_overlap(people: list[str], lfw: Path | None) -> dict[str, Any]:
    """Which group people are LFW people, and which of those the bundled embedder trained on.

    The bundled embedder was trained with ``lfw:all-except=<the five demo people>``, holding out 5% of the
    people with 2+ images as development people (``iznet.engine.data``: seed 0, ``dev_share`` 0.05). That
    split is recomputed here from the LFW folder and accepted only if it gives the training counts recorded in
    ``assets.json`` (people and images); otherwise ``trained_on`` is None.
    """
    if lfw is None or not (lfw / "images").is_dir():
        return {"lfw": None, "in_lfw": None, "not_in_lfw": None, "trained_on": None}
    root = lfw / "images"
    in_lfw = [p for p in people if (root / p).is_dir()]
    out: dict[str, Any] = {"lfw": str(lfw), "in_lfw": in_lfw, "not_in_lfw": [p for p in people if p not in in_lfw],
                           "lfw_images": {p: len(list((root / p).iterdir())) for p in in_lfw}, "trained_on": None}
    try:
        info = json.loads((pl.ASSETS_DIR / "assets.json").read_text())["embedder"]["summary"]["data_info"]
        all_people = sorted(d.name for d in root.iterdir() if d.is_dir())
        count = {p: len(list((root / p).iterdir())) for p in all_people}
        cand = [p for p in all_people if p not in DEMO_TRAINING_EXCLUDED]
        multi = [p for p in cand if count[p] >= 2]
        n_dev = max(2, int(round(0.05 * len(multi))))
        dev = set(np.random.default_rng(0).choice(multi, size=min(n_dev, len(multi)), replace=False).tolist())
        train = [p for p in cand if p not in dev]
        if len(train) == info["train_people"] and sum(count[p] for p in train) == info["train_images"]:
            out["trained_on"] = [p for p in in_lfw if p in train]
            out["dev_held_out"] = [p for p in in_lfw if p in dev]
    except (OSError, KeyError, ValueError, TypeError) as e:  # TypeError: an embedder without a training summary
        out["trained_on_error"] = str(e)
    return out


def demo_photo_640x480() -> np.ndarray:
    """The bundled demo collage (750x500, six faces) resized to 640x427 on a black 640x480 canvas."""
    img = load_image(pl.DEMO_PHOTO)
    h, w = img.shape[:2]
    s = 640 / w
    nh = int(round(h * s))
    small = cv2.resize(img, (640, nh), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((480, 640, 3), np.uint8)
    y0 = (480 - nh) // 2
    canvas[y0:y0 + nh] = small
    return canvas


def _median_ms(xs: list[float]) -> float:
    return round(1000 * statistics.median(xs), 2)


def time_pipeline(pipe: Any, image: np.ndarray, repeats: int, warmup: int = 3) -> dict[str, Any]:
    """Median milliseconds of ``pipe.label(image)`` + drawing, and of each stage run on its own.

    Every figure is given as wall time (``*_ms``) and as CPU time of this process (``*_cpu_ms``): on a shared
    machine the wall time includes waiting for a core, the CPU time does not (with several threads it adds
    up the threads' time, so it is then larger than an idle machine's wall time).
    """
    for _ in range(warmup):
        pipe.label(image).draw(image)
    keys = ("total", "detect", "embed", "match", "draw")
    wall: dict[str, list[float]] = {k: [] for k in keys}
    cpu: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        res = pipe.label(image)
        res.draw(image)
        wall["total"].append(time.perf_counter() - w)
        cpu["total"].append(time.process_time() - c)
    for _ in range(repeats):
        marks = [(time.perf_counter(), time.process_time())]
        boxes, _, points = pl.detect_faces_with_landmarks(pipe.detector, image)
        marks.append((time.perf_counter(), time.process_time()))
        e = pipe.embed_boxes(image, boxes, points)
        marks.append((time.perf_counter(), time.process_time()))
        pipe.matcher.match(e)
        marks.append((time.perf_counter(), time.process_time()))
        res.draw(image)
        marks.append((time.perf_counter(), time.process_time()))
        for k, (a, b) in zip(keys[1:], zip(marks, marks[1:])):
            wall[k].append(b[0] - a[0])
            cpu[k].append(b[1] - a[1])
    out: dict[str, Any] = {"faces": len(res.faces), "names": res.names, "repeats": repeats}
    for k in keys:
        out[f"{k}_ms"] = _median_ms(wall[k])
        out[f"{k}_cpu_ms"] = _median_ms(cpu[k])
    out["cpu_per_wall"] = round(sum(cpu["total"]) / sum(wall["total"]), 2)
    return out


def time_cli(gallery: Path, threshold: float, photo: Path, runs: int) -> dict[str, Any]:
    """Wall seconds of ``iznet label PHOTO`` as a fresh process (median of ``runs``), environment as is."""
    exe = Path(sys.executable).with_name("iznet")
    cmd = [str(exe), "label", str(photo), "-g", str(gallery), "-t", str(threshold), "--json"]
    walls = []
    out = ""
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        walls.append(time.perf_counter() - t)
        if r.returncode != 0:
            return {"error": r.stderr.strip()[-400:]}
        out = r.stdout
    faces = len(json.loads(out.splitlines()[0])["faces"])
    return {"wall_s": round(statistics.median(walls), 2), "runs": runs, "faces": faces,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


def parse_embedders(values: list[str] | None) -> list[tuple[str, Any, Any, str]]:
    """``NAME=SPEC:THRESHOLD`` values -> [(name, embedder, threshold, spec)]; None: the bundled embedder."""
    if not values:
        return [("iznet", load_embedder(), bundled_threshold(), "bundled")]
    out = []
    for v in values:
        name, sep, rest = v.partition("=")
        spec, sep2, t = rest.rpartition(":")
        if not sep or not sep2 or not name or name == "dlib" or "/" in name:
            raise SystemExit(f"--embedder {v!r}: use NAME=SPEC:THRESHOLD (NAME not 'dlib', no '/')")
        if t == "shipped":  # the embedder's own rule (meta calibration), as a gallery without a threshold gets
            thr = "stored"
        else:
            try:
                thr = float(t)
            except ValueError:
                raise SystemExit(f"--embedder {v!r}: the threshold {t!r} is neither a number nor 'shipped'") from None
        if spec == "bundled":
            emb, spec = load_embedder(), "bundled"
        else:
            emb = load_embedder(spec=spec)
        out.append((name, emb, thr, spec))
    if len({n for n, *_ in out}) != len(out):
        raise SystemExit("--embedder names must be unique")
    return out


def progress_printer(name: str, total: int) -> Callable[[int], None]:
    state = {"n": 0, "t": time.perf_counter()}

    def step(k: int) -> None:
        before = state["n"] // 250
        state["n"] += k
        if state["n"] // 250 > before or state["n"] == total:
            dt = time.perf_counter() - state["t"]
            print(f"  {name}: {state['n']}/{total} pictures, {dt:.0f} s", file=sys.stderr, flush=True)

    return step


# ---------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="group folder ROOT/<person>/<image> (or glint24/)")
    ap.add_argument("--enroll", type=int, default=5, help="pictures enrolled per person")
    ap.add_argument("--pad", type=float, default=2.0, help="detect mode: canvas side / picture side")
    ap.add_argument("--max-probes", type=int, default=None, help="at most this many probes per person (quick runs)")
    ap.add_argument("--lfw", type=Path, default=None, help="LFW folder (default: lfw/ beside the group folder)")
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads for the group evaluation")
    ap.add_argument("--latency-threads", default="1,2", help="thread counts for the latency runs")
    ap.add_argument("--repeats", type=int, default=15, help="timed repeats per latency measurement")
    ap.add_argument("--cli-runs", type=int, default=3, help="runs of the `iznet label` command (0: skip)")
    ap.add_argument("--no-dlib", action="store_true", help="skip the dlib reference")
    ap.add_argument("--collection", type=Path, default=None, help="a training collection folder (identities.csv): "
                    "shares are also given over the people it trains on and the others, by name")
    ap.add_argument("--embedder", action="append", default=None, metavar="NAME=SPEC:THRESHOLD",
                    help="an iznet system to score (repeatable): a name, an embedder checkpoint and its unknown-face "
                         "threshold (e.g. new=runs/x/model.pt:0.93), or 'shipped' for the checkpoint's own rule "
                         "(what a gallery without a threshold of its own uses); default: iznet=the bundled "
                         "embedder with its calibrated threshold; the latency runs use the first")
    ap.add_argument("--modes", default="detect,crop", help="detect, crop, group (comma-separated)")
    ap.add_argument("--spread", type=float, default=4.0, help="group mode: cell side / picture side")
    ap.add_argument("--no-relook", action="store_true", help="iznet's detector without its second look at small "
                    "faces (iznet.detect.relook)")
    ap.add_argument("--out", type=Path, default=None, help="JSON results")
    ap.add_argument("--md", type=Path, default=None, help="markdown tables")
    args = ap.parse_args(argv)

    root = group_root(args.data)
    lfw = args.lfw if args.lfw is not None else next(
        (p / "lfw" for p in (root.parent, root.parent.parent) if (p / "lfw" / "images").is_dir()), None)
    splits = split_group(root, args.enroll, args.max_probes)
    people = [s.person for s in splits]
    n_pics = sum(len(s.enroll) + len(s.probes) for s in splits)
    overlap = lfw_overlap(people, lfw)

    dlib_note = None
    if not args.no_dlib:
        from iznet.reference.dlib_ref import INSTALL_HINT, dlib_available

        if not dlib_available():
            dlib_note = f"dlib reference skipped: dlib or face_recognition_models is not installed ({INSTALL_HINT})"
            print(dlib_note, file=sys.stderr)
    else:
        dlib_note = "dlib reference skipped (--no-dlib)"
    use_dlib = dlib_note is None

    systems = parse_embedders(args.embedder)
    embedder, threshold = systems[0][1], systems[0][2]
    detector = load_detector(relook=not args.no_relook)
    results: dict[str, Any] = {
        "command": "python benchmarks/bench_group.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "load_avg_start": [round(x, 2) for x in os.getloadavg()],
                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
        "data": {"root": str(root), "people": len(people), "pictures": n_pics, "enroll": args.enroll,
                 "max_probes": args.max_probes, "lfw_overlap": overlap},
        "relook": not args.no_relook,
        "dlib": None, "dlib_note": dlib_note, "systems": {}, "latency": {},
        "embedders": {name: {"spec": spec, "embedder": emb.name, "threshold": t} for name, emb, t, spec in systems},
    }
    if use_dlib:
        from iznet.reference.dlib_ref import DLIB_THRESHOLD, DlibHogDetector, DlibPipeline, DlibResNetEncoder, \
            dlib_version

        encoder = DlibResNetEncoder()
        results["dlib"] = {"version": dlib_version(), **encoder.describe(), "threshold": DLIB_THRESHOLD}

    groups = {"all": people}
    if overlap.get("in_lfw") is not None:
        groups["in_lfw"] = overlap["in_lfw"]
        groups["not_in_lfw"] = overlap["not_in_lfw"]
    if args.collection is not None:
        trained = collection_train_people(args.collection, people)
        results["data"]["collection_train_people"] = trained
        if trained:  # else "all" says it
            groups["in_collection_train"] = trained
            groups["not_in_collection_train"] = [p for p in people if p not in trained]

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in ("detect", "crop", "group")]
    if bad or not modes:
        sys.exit(f"--modes {args.modes!r}: choose from detect, crop, group (comma-separated)")
    if "group" in modes and not args.spread >= 1:
        sys.exit(f"--spread {args.spread}: a cell is at least one picture wide (1 or more)")
    with tempfile.TemporaryDirectory(prefix="bench_group_") as tmp:
        tmpd = Path(tmp)
        galleries: dict[str, Gallery] = {}
        set_threads(args.threads)
        by_name = {name: (emb, t) for name, emb, t, _ in systems}
        for system in list(by_name) + (["dlib"] if use_dlib else []):
            for mode in modes:
                key = f"{system}/{mode}"
                g = Gallery(tmpd / f"{system}_{mode}.db")
                galleries[key] = g
                detects = mode in ("detect", "group")
                if system != "dlib":
                    det = PaddedDetector(detector, args.pad) if detects else WholeImageDetector()
                    emb, t = by_name[system]
                    pipe = pl.Pipeline(det, emb, g, threshold=t,
                                       margin_scale=pl.FACE_CROP_SCALE if detects else 1.0)
                else:
                    det = PaddedDetector(DlibHogDetector(), args.pad) if detects else WholeImageDetector()
                    pipe = DlibPipeline(det, g, encoder=encoder, threshold=DLIB_THRESHOLD)
                print(f"{key}: {len(people)} people, {n_pics} pictures", file=sys.stderr, flush=True)
                rep = evaluate_group(pipe, root, args.enroll, args.max_probes, progress_printer(key, n_pics),
                                     settings={"system": system, "mode": mode,
                                               "pad": args.pad if detects else None,
                                               "threads": args.threads},
                                     group_photos=GroupPhotos(spread=args.spread) if mode == "group" else None)
                row = rep.to_json(with_outcomes=False)
                row["groups"] = {name: {k: (round(v, 6) if isinstance(v, float) else v)
                                        for k, v in rep.shares(ps).items()} for name, ps in groups.items()}
                row["group_counts"] = {name: rep.counts(ps) for name, ps in groups.items()}
                results["systems"][key] = row
                s = row["shares"]
                print(f"{key}: correct {s['correct']:.3f} wrong {s['wrong']:.3f} unknown {s['unknown']:.3f} "
                      f"no_face {s['no_face']:.3f} nearest {s['nearest_correct']:.3f} "
                      f"({row['seconds']['label_per_image'] * 1000:.0f} ms/picture)", file=sys.stderr, flush=True)

        # ------------------------------------------------------------------ latency
        photo = demo_photo_640x480()
        photo_path = tmpd / "group_640x480.png"
        cv2.imwrite(str(photo_path), photo[:, :, ::-1])
        lat: dict[str, Any] = {"photo": "bundled demo collage resized to 640x427 on a black 640x480 canvas (built "
                                        "at run time)", "gallery_people": len(people), "runs": {}}
        g_ours = galleries.get(f"{systems[0][0]}/detect") or next(iter(galleries.values()))
        ours = pl.Pipeline(detector, embedder, g_ours, threshold=threshold)
        for n in [int(x) for x in args.latency_threads.split(",") if x.strip()]:
            set_threads(n)
            lat["runs"][f"iznet/threads={n}"] = time_pipeline(ours, photo, args.repeats)
            print(f"latency iznet threads={n}: {lat['runs'][f'iznet/threads={n}']}", file=sys.stderr, flush=True)
        if use_dlib:
            g_dlib = galleries.get("dlib/detect") or galleries[f"dlib/{modes[0]}"]
            ref = DlibPipeline(DlibHogDetector(), g_dlib, encoder=encoder, threshold=DLIB_THRESHOLD)
            set_threads(1)
            lat["runs"]["dlib"] = time_pipeline(ref, photo, args.repeats)
            print(f"latency dlib: {lat['runs']['dlib']}", file=sys.stderr, flush=True)
            for n in [int(x) for x in args.latency_threads.split(",") if x.strip()]:
                r = lat["runs"][f"iznet/threads={n}"]
                r["ratio_to_dlib"] = round(r["total_ms"] / lat["runs"]["dlib"]["total_ms"], 3)
                r["cpu_ratio_to_dlib"] = round(r["total_cpu_ms"] / lat["runs"]["dlib"]["total_cpu_ms"], 3)
        if args.cli_runs > 0:
            lat["cli"] = time_cli(g_ours.path, threshold, photo_path, args.cli_runs)
            print(f"latency iznet label command: {lat['cli']}", file=sys.stderr, flush=True)
        results["latency"] = lat
        for g in galleries.values():
            g.close()
    results["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]

    if args.out is not None:
        write_json(args.out, results)
    text = tables(results)
    if args.md is not None:
        with atomic_path(args.md) as tmp_md:
            tmp_md.write_text(text)
    print(text)
    return results


def _pct(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and x != x) else f"{100 * x:.1f}%"


def tables(results: dict) -> str:
    """Markdown tables of the results."""
    d = results["data"]
    lines = [f"Command: `{results['command']}`", "",
             f"Group {d['root']}: {d['people']} people, first {d['enroll']} pictures of each enrolled, the rest "
             "labelled (shares of the labelled pictures).", "",
             "| system | mode | people | probes | correct | wrong | unknown | no face | nearest right "
             "| ms/picture wall (CPU) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key, row in results["systems"].items():
        system, mode = key.split("/")
        for gname, s in row["groups"].items():
            sec = row["seconds"]
            ms = f"{1000 * sec['label_per_image']:.0f}" if gname == "all" else ""
            if ms and "label_cpu_per_image" in sec:
                ms += f" ({1000 * sec['label_cpu_per_image']:.0f})"
            lines.append(f"| {system} | {mode} | {gname} | {s['n']} | {_pct(s['correct'])} | {_pct(s['wrong'])} | "
                         f"{_pct(s['unknown'])} | {_pct(s['no_face'])} | {_pct(s['nearest_correct'])} | {ms} |")
    skipped = ", ".join(f"{k} {len(r['enroll_skipped'])}" for k, r in results["systems"].items())
    lines += ["", f"Enrolment pictures without a face found (not enrolled): {skipped}."]
    if results.get("dlib_note"):
        lines += ["", f"Note: {results['dlib_note']}"]
    lat = results.get("latency") or {}
    if lat.get("runs"):
        lines += ["", f"Latency: {lat['photo']}; gallery of {lat['gallery_people']} people; median ms, wall "
                      "(CPU time of the process in brackets).", "",
                  "| pipeline | faces | total | detect | crop+embed | match | draw | CPU/wall | total / dlib |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, r in lat["runs"].items():
            cells = " | ".join(f"{r[k + '_ms']} ({r[k + '_cpu_ms']})" for k in ("total", "detect", "embed", "match",
                                                                                "draw"))
            ratio = f"{r['ratio_to_dlib']} ({r['cpu_ratio_to_dlib']})" if "ratio_to_dlib" in r else ""
            lines.append(f"| {name} | {r['faces']} | {cells} | {r['cpu_per_wall']} | {ratio} |")
        if lat.get("cli"):
            c = lat["cli"]
            lines += ["", f"`iznet label` as a command (process start included): "
                          f"{c.get('wall_s', c.get('error'))} s median of {c.get('runs')} runs"]
    m = results["machine"]
    lines += ["", f"Machine: {m['cpus']} CPUs, load average {m['load_avg_start']} at start, {m.get('load_avg_end')} "
                  "at end."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
