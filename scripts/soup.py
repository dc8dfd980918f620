"""A run folder whose model is the weighted average of embedder checkpoints trained from one start.

    python scripts/soup.py --out runs/soup_v12_v7hw 0.5:runs/bench/v12_shipped.pt 0.5:runs/coll_v7_hw500/model.pt \
        --config-from runs/bench/v12_shipped.pt [--bn-pack collection/v6/train_aligned112.pt --bn-images 4096]
    RUN=runs/soup_v12_v7hw CROP=aligned COLL=collection/v2 bash scripts/eval_candidate.sh judge

Each ingredient is ``WEIGHT:CHECKPOINT`` (weights sum to 1; a run's ``last.pt`` works too). The networks must
share one architecture; the metadata (input size, crop, flip TTA) is the first ingredient's, with
``meta["soup"]`` naming the ingredients, and no stored unknown-face rule (stage ``ship`` sets one); an
ingredient of weight 1 keeps its training record (``iznet.engine.soup.soup_meta``).

``--bn-pack`` re-estimates the batch-norm statistics of the average on ``--bn-images`` images of that pack
(its development people, from ``--config-from``'s run, left out; no augmentation; ``iznet.engine.soup``);
without it the ingredients' statistics are averaged like every other weight.

``DST/config.json`` (which names the development people and the seed of the development pairs the stage
``calibrate`` draws) is rebuilt from ``--config-from``: a run folder's ``config.json``, or a checkpoint's
``meta.config`` and ``meta.summary`` (the bundled embedder keeps them), so that candidates and their control
are judged on the same pairs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def parse_ingredient(text: str) -> tuple[float, Path]:
    w, sep, path = text.partition(":")
    try:
        weight = float(w)
    except ValueError:
        weight = None
    if not sep or weight is None or not path:
        raise SystemExit(f"error: ingredient {text!r} is not WEIGHT:CHECKPOINT (e.g. 0.5:runs/x/model.pt)")
    return weight, Path(path)


def run_config(src: Path) -> dict:
    """The ``config.json`` a run folder has, or one rebuilt from a checkpoint's metadata."""
    if src.is_dir():
        f = src / "config.json"
        if not f.is_file():
            raise SystemExit(f"error: {f} is missing; give a run folder or an embedder checkpoint to --config-from")
        return json.loads(f.read_text())
    from iznet.utils.checkpoint import load_checkpoint

    meta = load_checkpoint(src, kind="embedder")["meta"]
    summary = meta.get("summary") or {}
    if "config" not in meta or "data" not in summary:
        raise SystemExit(f"error: {src} keeps no training configuration (meta.config, meta.summary.data); give its "
                         "run folder to --config-from")
    return {"config": meta["config"], "data": summary["data"], "data_info": summary.get("data_info") or {},
            "command": meta.get("command", "")}


def bn_batches(pack_path: Path, n_images: int, dev_people: list[str] | None, input_size: int, seed: int,
               batch: int = 128):
    import numpy as np
    import torch

    from iznet.data.pack import load_pack
    from iznet.models.preprocess import preprocess

    pack = load_pack(pack_path)
    keep = [c for c in pack.classes if c not in set(dev_people or ())]
    idx = pack.indices_for_classes(keep).numpy()
    rng = np.random.default_rng(seed)
    chosen = rng.choice(idx, size=min(n_images, len(idx)), replace=False)
    for s in range(0, len(chosen), batch):
        yield preprocess(pack.decode(chosen[s:s + batch]), input_size).contiguous(memory_format=torch.channels_last)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ingredients", nargs="+", help="WEIGHT:CHECKPOINT, two or more")
    ap.add_argument("--out", type=Path, required=True, help="a new run folder (model.pt, config.json)")
    ap.add_argument("--config-from", type=Path, required=True,
                    help="the run folder or checkpoint whose development people and seed the judge uses")
    ap.add_argument("--bn-pack", type=Path, help="recompute batch-norm statistics on this training pack")
    ap.add_argument("--bn-images", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    import torch

    from iznet.engine.soup import average_state_dicts, recompute_batchnorm, soup_meta
    from iznet.errors import IznetError
    from iznet.models.registry import create_model
    from iznet.utils.checkpoint import load_checkpoint, save_checkpoint

    parts = [parse_ingredient(t) for t in a.ingredients]
    if a.out.exists():
        raise SystemExit(f"error: {a.out} exists; give a new folder")
    if a.bn_images < 1:
        raise SystemExit(f"error: --bn-images must be at least 1, got {a.bn_images}")
    try:
        cks = [load_checkpoint(p, kind="embedder") for _, p in parts]
        names = [str(p) for _, p in parts]
        for ck, name in zip(cks[1:], names[1:]):
            if (ck["model"], ck["model_kwargs"]) != (cks[0]["model"], cks[0]["model_kwargs"]):
                raise SystemExit(f"error: {name} is {ck['model']} {ck['model_kwargs']}, {names[0]} is "
                                 f"{cks[0]['model']} {cks[0]['model_kwargs']}; average one architecture")
        sd = average_state_dicts([ck["state_dict"] for ck in cks], [w for w, _ in parts], names)
        cfg = run_config(a.config_from)
        meta = soup_meta([ck["meta"] for ck in cks], [w for w, _ in parts], names)
        if a.bn_pack is not None:
            model = create_model(cks[0]["model"], **cks[0]["model_kwargs"])
            model.load_state_dict(sd)
            model = model.to(memory_format=torch.channels_last)
            given = (cfg.get("data_info") or {}).get("dev_people_file")
            from iznet.engine.data import read_people_list

            dev = read_people_list(Path(given)) if given else None
            size = int(meta.get("input_size") or cks[0]["model_kwargs"].get("input_size") or 112)
            seen = recompute_batchnorm(model, bn_batches(a.bn_pack, a.bn_images, dev, size, a.seed))
            sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
            meta["soup"]["batchnorm"] = {"recomputed_on": str(a.bn_pack), "images": seen, "seed": a.seed,
                                         "left_out": given}
    except IznetError as e:
        raise SystemExit(f"error: {e}") from None
    a.out.mkdir(parents=True)
    save_checkpoint(a.out / "model.pt", kind="embedder", model=cks[0]["model"], model_kwargs=cks[0]["model_kwargs"],
                    state_dict=sd, meta=meta)
    cfg = dict(cfg, soup=meta["soup"])
    (a.out / "config.json").write_text(json.dumps(cfg, indent=2))
    print(json.dumps({"out": str(a.out / "model.pt"), **meta["soup"]}), file=sys.stdout)


if __name__ == "__main__":
    main()
