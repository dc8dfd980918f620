"""Short experiments on the toy rectangles task, scored on a validation seed (not the test seeds).

Each experiment trains :class:`iznet.detect.toy.ToyNet` with :func:`iznet.detect.toy.train_toy` on one
CPU thread and scores it on ``--val-images`` fresh images drawn with ``--val-seed`` (default 4242, distinct
from the training seed and from the CLI's test seeds 12345 and 777). Results are appended to a JSON list
(default ``runs/toy_sweep.json``, git-ignored), one record per experiment, with the solved share at a few
confidence thresholds (for reading only: evaluation stays at 0.3) and, at 0.3, by kind of image: a cell
holding two rectangle centres ("shared"), rectangles that touch or overlap ("touch"), all apart ("apart").

Example::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/toy_sweep.py --name w32_one \
        --set width=32 --set steps=1500 --set conf_target=one
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from iznet.detect.postprocess import PostprocessConfig, postprocess
from iznet.detect.toy import (TOY_SIZE, ToyConfig, ToyNet, _touch, evaluate_toy, image_solved, make_rectangles,
                              shared_cell, train_toy)

THRESHOLDS = (0.2, 0.3, 0.4)


def parse_sets(pairs: list[str]) -> dict:
    """``key=value`` strings -> ToyConfig overrides, each value cast to the field's type."""
    types = {f.name: type(f.default) for f in dataclasses.fields(ToyConfig) if f.name != "postprocess"}
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in types:
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE with KEY one of {sorted(types)}")
        out[key] = types[key](value)
    return out


def solved_by_kind(model: ToyNet, n_images: int, seed: int, render: str) -> dict[str, dict[str, float]]:
    """Solved share (confidence 0.3) and count of each kind of image: shared cell, touching, apart."""
    images, boxes = make_rectangles(n_images, torch.Generator().manual_seed(seed), render=render)
    with torch.no_grad():
        dets = postprocess(model(images), TOY_SIZE, PostprocessConfig())
    shared = shared_cell(boxes)
    out: dict[str, list[bool]] = {"shared": [], "touch": [], "apart": []}
    for i, (d, b) in enumerate(zip(dets, boxes)):
        r = b.int().tolist()
        touching = any(_touch(r[p], r[q]) for p in range(len(r)) for q in range(p + 1, len(r)))
        kind = "shared" if shared[i] else "touch" if touching else "apart"
        out[kind].append(image_solved(d.xyxy, b))
    return {k: {"n": len(v), "solved": round(sum(v) / max(len(v), 1), 4)} for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True, help="label of the experiment in the results file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="ToyConfig field")
    p.add_argument("--val-seed", type=int, default=4242)
    p.add_argument("--val-images", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("runs/toy_sweep.json"))
    p.add_argument("--save-dir", type=Path, default=Path("runs/toy_sweep"), help="models go to DIR/NAME.pt")
    p.add_argument("--load", type=Path, default=None,
                   help="score this saved model (trained with the --set fields) instead of training")
    p.add_argument("--test", action="store_true",
                   help="also score the test images of `iznet train-detector --toy` (seed 12345, 100 images; "
                        "seed 777, 1,000): only for a variant already chosen on the validation seed")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    cfg = ToyConfig(**parse_sets(args.set))
    t0 = time.perf_counter()
    if args.load is not None:
        model = ToyNet(cfg.width)
        model.load_state_dict(torch.load(args.load, map_location="cpu"))
        model.eval()
        summary = {"config": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "postprocess"},
                   "last_losses": None, "loaded_from": str(args.load)}
    else:
        model, summary = train_toy(cfg)
    seconds = time.perf_counter() - t0
    solved = {str(t): evaluate_toy(model, args.val_images, seed=args.val_seed, render=cfg.render,
                                   postprocess_config=PostprocessConfig(conf_threshold=t))
              for t in THRESHOLDS}
    kinds = solved_by_kind(model, args.val_images, args.val_seed, cfg.render)
    record = {"name": args.name, "config": summary["config"], "val_seed": args.val_seed,
              "val_images": args.val_images, "solved_val": solved, "solved_val_by_kind": kinds, "last_losses": summary["last_losses"],
              "train_seconds": round(seconds, 1) if args.load is None else None, "threads": args.threads}
    if args.test:
        record["solved_test_100"] = evaluate_toy(model, 100, seed=12345, render=cfg.render)
        record["solved_test_1000"] = evaluate_toy(model, 1000, seed=777, render=cfg.render)
    results = json.loads(args.out.read_text()) if args.out.exists() else []
    results.append(record)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    if args.load is None:
        args.save_dir.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), args.save_dir / f"{args.name}.pt")
    print(f"{args.name}: solved (val seed {args.val_seed}, {args.val_images} images) "
          + ", ".join(f"{v:.1%} @ {k}" for k, v in solved.items()) + f"; {seconds:.0f} s; at 0.3 by kind "
          + ", ".join(f"{k} {v['solved']:.1%} of {v['n']}" for k, v in kinds.items())
          + (f"; test: {record['solved_test_100']:.0%} of 100, {record['solved_test_1000']:.1%} of 1,000"
             if args.test else ""))


if __name__ == "__main__":
    main()
