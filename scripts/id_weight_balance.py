"""How large the identity term's gradient is next to the triplet term's, at the start of a fine-tune.

`iznet train --id-weight W` adds W x CosFace to the triplet loss. The two terms have different scales (a
triplet loss near 0.1, a cross-entropy over thousands of people near 5), so W is set from their gradients,
not from their values: on the first batches of the run, with the class directions imprinted from the
starting network (`--id-init centroids`), this prints the norm of each term's gradient over the network's
weights and their ratio. W = the median ratio makes the two terms pull with equal strength at the start.
Nothing here looks at development or test people: only training batches.

    OMP_NUM_THREADS=1 python scripts/id_weight_balance.py --data collection/v3/train_aligned112.pt \\
        --init runs/coll_v2_aligned_r2/model.pt --dev-people collection/v2/dev_people.txt --batches 8
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from iznet.engine.augment import augment_batch  # noqa: E402
from iznet.engine.config import TrainConfig, augment_preset  # noqa: E402
from iznet.engine.data import build_train_data, read_people_list  # noqa: E402
from iznet.engine.train import Trainer, _step_generator  # noqa: E402


def grad_norm(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> float:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="a collection pack")
    ap.add_argument("--init", required=True, help="the starting embedder checkpoint")
    ap.add_argument("--dev-people", type=Path, default=None, help="people held out of training (as the run)")
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--p", type=int, default=32)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--input-size", type=int, default=112)
    ap.add_argument("--head", default=None, help="the run's --head, if any")
    ap.add_argument("--id-scale", type=float, default=30.0)
    ap.add_argument("--id-margin", type=float, default=0.35)
    ap.add_argument("--augment", default="photo")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)

    kwargs = {"input_size": a.input_size, **({"head": a.head} if a.head else {})}
    cfg = TrainConfig(model="nn4_small", model_kwargs=kwargs, loss="triplet", mining="semi-hard", p=a.p, k=a.k,
                      people_weight="images", id_weight=1.0, id_scale=a.id_scale, id_margin=a.id_margin,
                      id_init="centroids", init=a.init, bf16=False, eval_every=0, checkpoint_every=0, steps=1)
    cfg.augment = augment_preset(a.augment)
    cfg.validate()
    names = read_people_list(a.dev_people) if a.dev_people else None
    td = build_train_data(a.data, device=torch.device("cpu"), seed=cfg.seed, size=a.input_size, dev_people=names)
    tr = Trainer(cfg, td, Path("/tmp/iznet_id_weight_balance"), device="cpu")
    imprint = tr.imprint_class_directions()
    print(json.dumps(imprint), flush=True)
    params = [p for p in tr.model.parameters() if p.requires_grad]
    rows = []
    tr.model.train()
    for step in range(a.batches):
        pos = tr._batches.at(step)
        x = augment_batch(td.images[torch.as_tensor(td.train.indices[pos])], tr.size, cfg.augment,
                          _step_generator(cfg.seed, step))
        labels = torch.as_tensor(td.train.labels[pos])
        emb = tr.model(x).float()
        loss_fn, miner = tr._loss_fn, tr._miner
        trip = loss_fn(emb, labels, miner(emb, labels))
        ident = tr.id_loss(emb, labels)
        g_t, g_i = grad_norm(trip, params), grad_norm(ident, params)
        rows.append({"step": step, "triplet_loss": float(trip.detach()), "id_loss": float(ident.detach()),
                     "id_acc": tr.id_loss.last_stats["id_acc"], "grad_triplet": g_t, "grad_id": g_i,
                     "ratio": g_t / max(g_i, 1e-12)})
        print(json.dumps(rows[-1]), flush=True)
    ratio = float(np.median([r["ratio"] for r in rows]))
    out = {"data": a.data, "init": a.init, "imprint": imprint, "batches": rows, "median_ratio": ratio,
           "suggested_id_weight": float(f"{ratio:.2g}")}
    print(f"median |grad triplet| / |grad identity| = {ratio:.4f}: --id-weight {out['suggested_id_weight']}")
    if a.json:
        from iznet.utils.io import write_json

        a.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(a.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
