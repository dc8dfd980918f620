"""Does batch-hard training collapse a fresh network's embeddings? Mean batch distance over the first steps.

    python scripts/check_embedding_collapse.py bn      # NN4-small at 64 px with the BN before the L2 norm
    python scripts/check_embedding_collapse.py nobn    # the same head without it (removed after creation)

Needs packs/lfw112.pt. Prints the step, the loss and the mean pairwise distance of the batch.
"""
import sys, numpy as np, torch, torch.nn as nn
torch.set_num_threads(1)
from iznet.data.pack import load_pack
from iznet.models import create_model
from iznet.mining import create_miner
from iznet.losses import TripletLoss
from iznet.engine.augment import augment_batch
from iznet.engine.config import AugmentConfig
from iznet.sampling.batches import PKBatchSampler
p = load_pack("packs/lfw112.pt"); 
bn = sys.argv[1] == "bn"
torch.manual_seed(0)
m = create_model("nn4_small", input_size=64)
if not bn and hasattr(m.head, "bn"):
    del m.head.bn
opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
labels = p.labels.numpy()
counts = np.bincount(labels); keep = np.flatnonzero(counts[labels] >= 4)[:3000]
sub_labels = labels[keep]
imgs = p.decode(indices=keep)
s = PKBatchSampler(sub_labels, 16, 4, seed=0)
miner = create_miner("batch-hard"); lf = TripletLoss(0.2)
g = torch.Generator().manual_seed(0)
for i, b in enumerate(s):
    if i >= 60: break
    b = np.asarray(b)
    x = augment_batch(imgs[torch.as_tensor(b)], 64, AugmentConfig(), g)
    e = m(x); lab = torch.as_tensor(sub_labels[b])
    loss = lf(e, lab, miner(e, lab))
    opt.zero_grad(); loss.backward(); opt.step()
    if i % 10 == 0 or i == 59:
        with torch.no_grad():
            d = torch.cdist(e, e)
        print(i, round(float(loss.detach()), 4), "mean dist", round(float(d.mean()), 3), flush=True)
