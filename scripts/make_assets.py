"""Build the files shipped in ``src/iznet/assets``: the default embedder, the default detector and the demo.

    python scripts/make_assets.py --embedder-run runs/default_nn4_small_v3 --detector runs/det_cpu_ft416_r2/best.pt \
        --pack packs/lfw112.pt --lfw ../shared/data/lfw

1. ``embedder.pt``: the run's ``model.pt`` with its weights stored as float16 (half the size; they are cast
   back to float32 on load).
2. ``detector.pt``: the detector checkpoint, as trained.
3. The unknown-face threshold: the embedder's distances on the run's *development* pairs (LFW people held
   out of its training), the largest threshold with a false-accept rate <= ``--target-far``; stored in
   ``assets.json`` and in the embedder's own metadata (``meta["calibration"]``), so a gallery that has no
   threshold of its own uses it.
4. ``demo/photo.jpg``: a 3×2 collage of LFW photos: five people of the demo gallery (all left out of the
   embedder's training) and one stranger, who is not enrolled. ``demo/gallery.db``: those five people
   enrolled from five other photos each (detected and cropped by the bundled detector), with no threshold of its
   own, so it answers with the embedder's shipped rule (the threshold, tightened to the gallery, and the margin).
   ``demo/expected.json``: who is where, for the end-to-end test.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "src" / "iznet" / "assets"
DEMO_PEOPLE = ["George_W_Bush", "Colin_Powell", "Tony_Blair", "Donald_Rumsfeld", "Gerhard_Schroeder"]
STRANGER = "Serena_Williams"
DEMO_PHOTO_INDEX = 1  # the collage uses image 1 of each person; the gallery images 2..6


def build_embedder(run: Path, calibration: dict | None = None) -> dict:
    from iznet.utils.checkpoint import load_checkpoint, save_checkpoint

    ck = load_checkpoint(run / "model.pt", kind="embedder")
    sd = {k: (v.half() if v.is_floating_point() else v) for k, v in ck["state_dict"].items()}
    meta = dict(ck["meta"])
    meta["weights_dtype"] = "float16"
    meta["source_run"] = str(run)
    if calibration is not None:  # the threshold a gallery without its own uses (iznet.recognize.pipeline)
        meta["calibration"] = calibration
    save_checkpoint(ASSETS / "embedder.pt", kind="embedder", model=ck["model"], model_kwargs=ck["model_kwargs"],
                    state_dict=sd, meta=meta)
    return meta


def dev_threshold(run: Path, pack: Path, lfw_root: Path, target_far: float,
                  checkpoint: Path | str | None = None) -> dict:
    from iznet.engine.data import build_train_data
    from iznet.recognize.embedder import load_embedder
    from iznet.recognize.matcher import calibrate_threshold

    cfg = json.loads((run / "config.json").read_text())
    seed = cfg["config"]["seed"]
    names = None
    given = (cfg.get("data_info") or {}).get("dev_people_file")
    if given:  # the run held out a given list (--dev-people), not a random share: the same people here
        from iznet.engine.data import read_people_list

        names = read_people_list(Path(given))
    td = build_train_data(cfg["data"], pack=pack, data_root=lfw_root.parent, device="cpu", seed=seed,
                          dev_people=names)
    emb = load_embedder(str(checkpoint or ASSETS / "embedder.pt"), device="cpu")
    pairs = td.dev_pairs
    uniq, inv = np.unique(np.concatenate([pairs.idx1, pairs.idx2]), return_inverse=True)
    e = emb.embed(td.images[torch.as_tensor(uniq)])
    n = len(pairs.idx1)
    dist = np.linalg.norm(e[inv[:n]] - e[inv[n:]], axis=1)
    same = pairs.same.astype(bool)
    t = calibrate_threshold(dist, same, target_far)
    who = "LFW people" if str(cfg["data"]).startswith("lfw:") else f"people of {cfg['data']}"
    if given:
        who += f" listed in {given}"
    from iznet.eval.verification import auc, best_threshold

    return {"threshold": float(t), "target_far": target_far, "far": float(np.mean(dist[~same] <= t)),
            "dev_best_accuracy": float(best_threshold(dist, same)[1]), "dev_auc": float(auc(dist, same)),
            "tar": float(np.mean(dist[same] <= t)), "n_genuine": int(same.sum()), "n_impostor": int((~same).sum()),
            "source": f"development pairs of {run} ({who} held out of training)"}


def build_demo(lfw_root: Path, threshold: float) -> dict:
    from iznet.data.images import load_image
    from iznet.recognize.gallery import Gallery
    from iznet.loading import load_detector, load_embedder
    from iznet.recognize.pipeline import enroll_files

    demo = ASSETS / "demo"
    demo.mkdir(parents=True, exist_ok=True)
    people = DEMO_PEOPLE + [STRANGER]
    tiles = [load_image(lfw_root / "images" / p / f"{p}_{DEMO_PHOTO_INDEX:04d}.jpg") for p in people]
    h, w = tiles[0].shape[:2]
    canvas = np.zeros((2 * h, 3 * w, 3), np.uint8)
    where = {}
    for i, (p, t) in enumerate(zip(people, tiles)):
        r, c = divmod(i, 3)
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = t
        where[p] = [c * w, r * h, (c + 1) * w, (r + 1) * h]
    Image.fromarray(canvas).save(demo / "photo.jpg", quality=90)

    gpath = demo / "gallery.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(gpath) + suffix).unlink(missing_ok=True)
    embedder = load_embedder(spec=str(ASSETS / "embedder.pt"), device="cpu")
    detector = load_detector(spec=str(ASSETS / "detector.pt"))
    enrolled = {}
    with Gallery(gpath) as g:
        for p in DEMO_PEOPLE:
            paths = [lfw_root / "images" / p / f"{p}_{i:04d}.jpg" for i in range(2, 7)]
            rep = enroll_files(g, p.replace("_", " "), paths, embedder, detector)
            enrolled[p] = len(rep.added)
        # no threshold stored: the demo answers with the embedder's shipped rule, as a new user's gallery does
    # A rollback journal instead of WAL: reading the shipped demo then creates no -wal/-shm files beside it.
    import sqlite3

    con = sqlite3.connect(gpath)
    con.execute("PRAGMA journal_mode = DELETE")
    con.close()
    # Stored paths point into the shared LFW folder; the demo only needs the embeddings.
    expected = {"tiles": {p.replace("_", " "): where[p] for p in people},
                "enrolled": [p.replace("_", " ") for p in DEMO_PEOPLE], "stranger": STRANGER.replace("_", " ")}
    return {"enrolled": enrolled, "faces": record_demo_answers(expected)}


def record_demo_answers(expected: dict | None = None) -> list:
    """Label the demo photo with the demo gallery as the pipeline does by default (storing the default
    prototypes in the gallery first) and write the answers into ``demo/expected.json`` (``expected``: the
    rest of that file; None keeps the file's tiles and people)."""
    from iznet.loading import load_detector, load_embedder
    from iznet.recognize.gallery import Gallery
    from iznet.recognize.pipeline import Pipeline, embedder_tag
    from iznet.recognize.prototypes import DEFAULT_METHOD

    demo = ASSETS / "demo"
    if expected is None:
        expected = json.loads((demo / "expected.json").read_text())
    embedder = load_embedder(spec=str(ASSETS / "embedder.pt"), device="cpu")
    detector = load_detector(spec=str(ASSETS / "detector.pt"))
    with Gallery(demo / "gallery.db") as g:
        g.rebuild_prototypes(embedder_tag(embedder), DEFAULT_METHOD)
        result = Pipeline(detector, embedder, g).label_file(demo / "photo.jpg")
    import sqlite3

    con = sqlite3.connect(demo / "gallery.db")  # a rollback journal: reading the demo makes no -wal/-shm files
    con.execute("PRAGMA journal_mode = DELETE")
    con.close()
    expected["labelled"] = result.to_json()
    (demo / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    return [(f.name, round(f.distance, 3)) for f in result.faces]


def read_spread_rule(path: Path) -> dict:
    """The rule ``chosen`` in a scripts/choose_spread_rule.py JSON, checked; SystemExit naming the file if bad."""
    from iznet.errors import IznetError
    from iznet.recognize.matcher import SpreadRule

    try:
        ch = json.loads(path.read_text())["chosen"]
        return SpreadRule.from_dict({k: ch[k] for k in SpreadRule.KEYS}).to_dict()
    except (OSError, ValueError, KeyError, TypeError, IznetError) as e:
        raise SystemExit(f"--spread-rule {path}: no chosen spread rule in it ({e}); "
                         "write one with scripts/choose_spread_rule.py") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--embedder-run", type=Path)
    ap.add_argument("--detector", type=Path, default=ASSETS / "detector.pt")
    ap.add_argument("--pack", type=Path, help="LFW pack, for a run trained on an LFW spec "
                                                             "(a run on a collection pack reads its own pack)")
    ap.add_argument("--lfw", type=Path)
    ap.add_argument("--target-far", type=float, default=0.01)
    ap.add_argument("--gallery-far", type=float, default=None,
                    help="shipped rule: tighten the threshold to the gallery's own look-alikes at this rate "
                         "(chosen with scripts/openset_rules.py on development people)")
    ap.add_argument("--margin", type=float, default=None, help="shipped rule: runner-up margin")
    ap.add_argument("--spread-rule", type=Path, default=None,
                    help="shipped rule: the spread rule 'chosen' in this JSON (scripts/choose_spread_rule.py on "
                         "development people); it weighs the margin itself, so --margin is refused beside it")
    ap.add_argument("--cluster-threshold", type=float, default=None,
                    help="`iznet cluster`'s default cut (scripts/choose_cluster_threshold.py, development people)")
    ap.add_argument("--demo-answers-only", action="store_true",
                    help="only relabel the demo photo with the demo gallery as the pipeline does now (e.g. after "
                         "a change of the default prototypes) and rewrite demo/expected.json")
    ap.add_argument("--calibrate-only", action="store_true",
                    help="print the run's development threshold as JSON and write nothing")
    ap.add_argument("--embedder", default=None, help="with --calibrate-only: calibrate this embedder spec on the "
                    "run's development pairs instead of the run's model.pt (e.g. an ensemble 'a.pt+b.pt')")
    a = ap.parse_args()
    if a.demo_answers_only:  # needs neither a run nor LFW
        print(json.dumps(record_demo_answers()))
        return
    if a.embedder_run is None or a.pack is None or a.lfw is None:
        ap.error("--embedder-run, --pack and --lfw are needed (all but --demo-answers-only)")
    torch.set_num_threads(2)
    if a.spread_rule is not None and a.margin is not None:
        ap.error("--spread-rule weighs the runner-up margin itself: leave --margin out")
    if a.spread_rule is not None:
        read_spread_rule(a.spread_rule)  # a bad file stops here, before anything is written
    if a.embedder is not None and not a.calibrate_only:
        ap.error("--embedder goes with --calibrate-only (the shipped embedder is the run's model.pt)")
    if a.calibrate_only:
        spec = a.embedder if a.embedder is not None else a.embedder_run / "model.pt"
        print(json.dumps(dev_threshold(a.embedder_run, a.pack, a.lfw, a.target_far, spec)))
        return
    ASSETS.mkdir(parents=True, exist_ok=True)
    meta = build_embedder(a.embedder_run)
    if a.detector.resolve() != (ASSETS / "detector.pt").resolve():  # keeping the bundled detector: nothing to copy
        shutil.copyfile(a.detector, ASSETS / "detector.pt")
    cal = dev_threshold(a.embedder_run, a.pack, a.lfw, a.target_far)
    if a.gallery_far is not None:
        cal["gallery_far"] = a.gallery_far
    if a.margin is not None:
        cal["margin"] = a.margin
    if a.cluster_threshold is not None:
        cal["cluster_threshold"] = a.cluster_threshold
    if a.spread_rule is not None:
        cal["spread_rule"] = read_spread_rule(a.spread_rule)
    meta = build_embedder(a.embedder_run, cal)
    demo = build_demo(a.lfw, cal["threshold"])
    report = {"embedder": {"model": meta.get("config", {}).get("model"), "summary": meta.get("summary")},
              "calibration": cal, "demo": demo,
              "sizes_bytes": {p.name: p.stat().st_size for p in ASSETS.glob("*.pt")}}
    (ASSETS / "assets.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
