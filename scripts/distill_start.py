"""Where the distillation term starts: its mean over random batches of training images for a given embedder.

    python scripts/distill_start.py -e src/iznet/assets/embedder.pt --pack collection/v7/train_aligned112.pt \
        --teacher collection/v7/teacher_dlib.pt --dev-people collection/v2/dev_people.txt

Batches of ``--batch`` training images (development people left out), no augmentation, the network in eval
mode without flip TTA; the term is ``iznet.engine.distill.similarity_distill_loss`` against the teacher's
centred unit descriptors (centred on every training image, as ``iznet train --distill`` does). With ``--mode
feature`` the term is ``feature_distill_loss`` through the orthogonal Procrustes map fitted on ``--map-images``
other training images (the trainer fits it on all of them at step 0). Used to choose ``--distill-weight``
before a run (docs/training.md), never on development images.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-e", "--embedder", required=True)
    ap.add_argument("--pack", type=Path, required=True)
    ap.add_argument("--teacher", type=Path, required=True)
    ap.add_argument("--dev-people", type=Path, required=True)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mode", choices=("similarity", "feature"), default="similarity")
    ap.add_argument("--map-images", type=int, default=4096, help="--mode feature: images the map is fitted on")
    a = ap.parse_args()
    import numpy as np
    import torch

    from iznet.data.pack import load_pack
    from iznet.engine.data import read_people_list
    from iznet.engine.distill import (feature_distill_loss, load_teacher, procrustes_map, similarity_distill_loss,
                                      teacher_targets)
    from iznet.models.preprocess import preprocess
    from iznet.recognize.embedder import load_embedder

    pack = load_pack(a.pack)
    dev = set(read_people_list(a.dev_people))
    train = pack.indices_for_classes([c for c in pack.classes if c not in dev]).numpy()
    targets = teacher_targets(load_teacher(a.teacher, pack.paths), train)
    emb = load_embedder(a.embedder, device="cpu", tta=False)
    rng = np.random.default_rng(a.seed)

    def embed(idx):
        out = []
        for s in range(0, len(idx), a.batch):
            x = preprocess(pack.decode(idx[s:s + a.batch]), emb.input_size).contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                out.append(emb.model(x).float())
        return torch.cat(out)

    mapping, info = None, {}
    if a.mode == "feature":
        fit_idx = rng.choice(train, size=min(a.map_images, len(train)), replace=False)
        train = np.setdiff1d(train, fit_idx)
        mapping = procrustes_map(embed(fit_idx), targets[torch.as_tensor(fit_idx)]).t()
        info = {"map_images": int(len(fit_idx))}
    values = []
    for _ in range(a.batches):
        idx = rng.choice(train, size=a.batch, replace=False)
        e, t = embed(idx), targets[torch.as_tensor(idx)]
        loss = similarity_distill_loss(e, t) if mapping is None else feature_distill_loss(e, t, mapping)
        values.append(float(loss))
    print(json.dumps({"embedder": a.embedder, "mode": a.mode, **info, "batches": a.batches, "batch": a.batch,
                      "mean": float(np.mean(values)), "sd": float(np.std(values))}))


if __name__ == "__main__":
    main()
