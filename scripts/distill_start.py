"""Where the distillation term starts: its mean over random batches of training images for a given embedder.

    python scripts/distill_start.py -e src/iznet/assets/embedder.pt --pack collection/v7/train_aligned112.pt \
        --teacher collection/v7/teacher_dlib.pt --dev-people collection/v2/dev_people.txt

Batches of ``--batch`` training images (development people left out), no augmentation, the network in eval
mode without flip TTA; the term is ``iznet.engine.distill.similarity_distill_loss`` against the teacher's
centred unit descriptors (centred on every training image, as ``iznet train --distill`` does). Used to choose
``--distill-weight`` before a run (docs/training.md), never on development images.
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
    a = ap.parse_args()
    import numpy as np
    import torch

    from iznet.data.pack import load_pack
    from iznet.engine.data import read_people_list
    from iznet.engine.distill import load_teacher, similarity_distill_loss, teacher_targets
    from iznet.models.preprocess import preprocess
    from iznet.recognize.embedder import load_embedder

    pack = load_pack(a.pack)
    dev = set(read_people_list(a.dev_people))
    train = pack.indices_for_classes([c for c in pack.classes if c not in dev]).numpy()
    targets = teacher_targets(load_teacher(a.teacher, pack.paths), train)
    emb = load_embedder(a.embedder, device="cpu", tta=False)
    rng = np.random.default_rng(a.seed)
    values = []
    for _ in range(a.batches):
        idx = rng.choice(train, size=a.batch, replace=False)
        x = preprocess(pack.decode(idx), emb.input_size).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            e = emb.model(x).float()
        values.append(float(similarity_distill_loss(e, targets[torch.as_tensor(idx)])))
    print(json.dumps({"embedder": a.embedder, "batches": a.batches, "batch": a.batch,
                      "mean": float(np.mean(values)), "sd": float(np.std(values))}))


if __name__ == "__main__":
    main()
