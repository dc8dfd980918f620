"""A copy of a training run whose model embeds with test-time zoom views (``meta["tta_zooms"]``).

The weights are the run's, unchanged; only the views differ, so every stage of ``scripts/eval_candidate.sh``
(calibration, the unknown-face rule, the clustering cut, shipping) treats the copy as a run of its own:

    python scripts/with_zoom_views.py runs/coll_v3_v2dev runs/coll_v3_v2dev_zoom88 --zooms 0.88
    RUN=runs/coll_v3_v2dev_zoom88 CROP=aligned COLL=collection/v2 bash scripts/eval_candidate.sh calibrate

Writes ``DST/model.pt`` (the run's ``model.pt`` with the views in its metadata and ``meta["zoom_views_of"]``)
and ``DST/config.json`` (the run's, which names its development people).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def main() -> None:
    from iznet.models.preprocess import check_zooms
    from iznet.utils.checkpoint import load_checkpoint, save_checkpoint

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path, help="a training run folder (model.pt, config.json)")
    ap.add_argument("dst", type=Path, help="new folder")
    ap.add_argument("--zooms", required=True, help="comma-separated shares of the crop's side, each in (0.5, 1)")
    a = ap.parse_args()
    from iznet.errors import ModelError

    try:
        zooms = check_zooms(a.zooms.split(","), "--zooms")
    except ModelError as e:
        raise SystemExit(f"error: {e}") from None
    for name in ("model.pt", "config.json"):
        if not (a.src / name).is_file():
            raise SystemExit(f"error: {a.src / name} is missing; give a training run folder")
    if a.dst.exists():
        raise SystemExit(f"error: {a.dst} exists; give a new folder")
    ck = load_checkpoint(a.src / "model.pt", kind="embedder")
    meta = dict(ck["meta"], tta_zooms=list(zooms), zoom_views_of=str(a.src))
    a.dst.mkdir(parents=True)
    save_checkpoint(a.dst / "model.pt", kind="embedder", model=ck["model"], model_kwargs=ck["model_kwargs"],
                    state_dict=ck["state_dict"], meta=meta)
    shutil.copy2(a.src / "config.json", a.dst / "config.json")
    print(f"{a.dst / 'model.pt'}: {a.src / 'model.pt'} with zoom views {list(zooms)}")


if __name__ == "__main__":
    main()
