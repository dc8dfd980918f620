"""Find where a triplet-loss run first produces a non-finite value (GPU debugging aid).

    python scripts/debug_nan.py --pack packs/lfw112.pt --data-root packs [--no-bf16] [--no-channels-last]
"""
import argparse

import torch

from iznet.engine.data import build_train_data
from iznet.engine.train import TrainConfig, Trainer

ap = argparse.ArgumentParser()
ap.add_argument("--pack", required=True)
ap.add_argument("--data-root", required=True)
ap.add_argument("--model", default="nn2")
ap.add_argument("--input-size", type=int, default=112)
ap.add_argument("--mining", default="batch-hard")
ap.add_argument("--steps", type=int, default=12)
ap.add_argument("--no-bf16", action="store_true")
ap.add_argument("--no-channels-last", action="store_true")
a = ap.parse_args()
dev = torch.device("cuda")
td = build_train_data("lfw:fold=0", pack=a.pack, data_root=a.data_root, device=dev)
cfg = TrainConfig(model=a.model, model_kwargs={"input_size": a.input_size}, mining=a.mining, p=64, k=4,
                  steps=a.steps, warmup_steps=200, eval_every=0, checkpoint_every=0,
                  bf16=not a.no_bf16, channels_last=not a.no_channels_last)
tr = Trainer(cfg, td, "/tmp/debug_nan", device=dev)
for _ in range(a.steps):
    try:
        ev = tr._train_step()
    except Exception as e:  # noqa: BLE001 - report and stop
        print("step failed:", e)
        break
    bad = [n for n, p in tr.model.named_parameters() if not torch.isfinite(p).all()]
    gbad = [n for n, p in tr.model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    gmax = max(float(p.grad.abs().max()) for p in tr.model.parameters() if p.grad is not None)
    print(ev["step"], round(ev["loss"], 4), ev.get("active_share"), "grad max", gmax, "nonfinite grads", gbad[:4],
          "nonfinite params", bad[:4], flush=True)
    if bad or gbad:
        break
