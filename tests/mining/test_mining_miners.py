"""Every miner against an explicit loop over all (a, p, n), plus the nothing-to-mine cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iznet.mining import (
    AllTripletsMiner,
    BatchHardMiner,
    HardMiner,
    MiningError,
    RandomHardMiner,
    SemiHardMiner,
    create_miner,
    list_miners,
)


def batch(seed, b=14, d=6, classes=4, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (b,), generator=g) * 3 + 5
    x = torch.nn.functional.normalize(torch.randn(b, d, generator=g, dtype=dtype), dim=1)
    return x, labels


def dist(x, squared):
    d = torch.cdist(x, x).numpy()
    return d**2 if squared else d


def loop_pairs(labels):
    lab = labels.tolist()
    return [(a, p) for a in range(len(lab)) for p in range(len(lab)) if a != p and lab[a] == lab[p]]


def negatives(labels, a):
    lab = labels.tolist()
    return [n for n in range(len(lab)) if lab[n] != lab[a]]


def as_set(triplets):
    a, p, n = (t.tolist() for t in triplets)
    assert len(a) == len(p) == len(n)
    return set(zip(a, p, n))


def check_contract(out, device="cpu"):
    assert len(out) == 3
    for t in out:
        assert t.dtype == torch.int64 and t.ndim == 1 and t.device.type == device


SEEDS = [0, 1, 2, 3]


@pytest.mark.parametrize("seed", SEEDS)
def test_all_triplets(seed):
    x, labels = batch(seed)
    out = AllTripletsMiner()(x, labels)
    check_contract(out)
    expected = {(a, p, n) for a, p in loop_pairs(labels) for n in negatives(labels, a)}
    assert as_set(out) == expected and len(out[0]) == len(expected) > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_hard(seed):
    x, labels = batch(seed)
    d = dist(x, True)
    expected = set()
    for a, p in loop_pairs(labels):
        negs = negatives(labels, a)
        if negs:
            expected.add((a, p, min(negs, key=lambda n: d[a, n])))
    out = HardMiner()(x, labels)
    check_contract(out)
    assert as_set(out) == expected and len(expected) > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_batch_hard(seed):
    x, labels = batch(seed)
    d = dist(x, False)
    expected = set()
    for a in range(len(labels)):
        pos = [p for aa, p in loop_pairs(labels) if aa == a]
        negs = negatives(labels, a)
        if pos and negs:
            expected.add((a, max(pos, key=lambda p: d[a, p]), min(negs, key=lambda n: d[a, n])))
    out = BatchHardMiner()(x, labels)
    check_contract(out)
    assert as_set(out) == expected and len(expected) > 0


def semi_hard_candidates(x, labels, margin, squared):
    d = dist(x, squared)
    return {(a, p): [n for n in negatives(labels, a) if d[a, p] < d[a, n] < d[a, p] + margin]
            for a, p in loop_pairs(labels)}, d


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("squared,margin", [(True, 0.5), (False, 0.3)])
def test_semi_hard_hardest(seed, squared, margin):
    x, labels = batch(seed)
    cand, d = semi_hard_candidates(x, labels, margin, squared)
    expected = {(a, p, min(ns, key=lambda n: d[a, n])) for (a, p), ns in cand.items() if ns}
    out = SemiHardMiner(margin=margin, squared=squared)(x, labels)
    check_contract(out)
    assert as_set(out) == expected and len(expected) > 0
    # FaceNet's condition, checked on the output directly
    a, p, n = out
    dd = torch.as_tensor(d)
    assert ((dd[a, p] < dd[a, n]) & (dd[a, n] < dd[a, p] + margin)).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_semi_hard_random_is_valid_and_covers_the_same_pairs(seed):
    x, labels = batch(seed)
    cand, _ = semi_hard_candidates(x, labels, 0.5, True)
    miner = SemiHardMiner(margin=0.5, choice="random", seed=seed)
    out = miner(x, labels)
    check_contract(out)
    got = as_set(out)
    assert {(a, p) for a, p, _ in got} == {k for k, ns in cand.items() if ns}
    assert all(n in cand[(a, p)] for a, p, n in got)
    assert as_set(SemiHardMiner(margin=0.5, choice="random", seed=seed)(x, labels)) == got  # seeded


def random_hard_candidates(x, labels, margin, min_loss, squared=True):
    d = dist(x, squared)
    return {(a, p): [n for n in negatives(labels, a) if d[a, p] - d[a, n] + margin > min_loss]
            for a, p in loop_pairs(labels)}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("margin,min_loss", [(0.2, 0.0), (0.5, 0.3)])
def test_random_hard_is_valid_and_covers_the_same_pairs(seed, margin, min_loss):
    x, labels = batch(seed)
    cand = random_hard_candidates(x, labels, margin, min_loss)
    out = RandomHardMiner(margin=margin, min_loss=min_loss, seed=seed)(x, labels)
    check_contract(out)
    got = as_set(out)
    assert {(a, p) for a, p, _ in got} == {k for k, ns in cand.items() if ns}
    assert len(got) > 0
    assert all(n in cand[(a, p)] for a, p, n in got)


def test_random_hard_choice_is_uniform_among_candidates():
    from scipy.stats import chisquare

    x, labels = batch(0, b=16, classes=2)
    cand = random_hard_candidates(x, labels, 2.0, 0.0)  # margin 2 on squared distances: many candidates
    (a0, p0), ns = max(cand.items(), key=lambda kv: len(kv[1]))
    assert len(ns) >= 4
    miner = RandomHardMiner(margin=2.0, seed=11)
    picks = []
    for _ in range(600):
        a, p, n = miner(x, labels)
        row = ((a == a0) & (p == p0)).nonzero()[0, 0]
        picks.append(int(n[row]))
    counts = np.array([picks.count(n) for n in ns])
    assert counts.sum() == 600 and chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize("name", ["all", "hard", "semi-hard", "random-hard", "batch-hard"])
@pytest.mark.parametrize("labels", [[3] * 8, list(range(8)), [1], [1, 2], [1, 1]])
def test_nothing_to_mine_gives_empty_tensors(name, labels):
    g = torch.Generator().manual_seed(len(labels))
    x = torch.nn.functional.normalize(torch.randn(len(labels), 4, generator=g), dim=1)
    out = create_miner(name)(x, torch.tensor(labels))
    check_contract(out)
    assert all(t.numel() == 0 for t in out)


@pytest.mark.parametrize("name", ["all", "hard", "semi-hard", "random-hard", "batch-hard"])
def test_inputs_flexible_and_half_precision(name):
    x, labels = batch(5, dtype=torch.float32)
    miner = create_miner(name, seed=0) if name in ("semi-hard", "random-hard") else create_miner(name)
    ref = as_set(miner(x, labels))
    if name not in ("semi-hard", "random-hard"):
        assert as_set(miner(x, labels.numpy())) == ref
        assert as_set(miner(x, labels.tolist())) == ref
    out = miner(x.to(torch.bfloat16), labels)
    check_contract(out)
    x.requires_grad_(True)
    out = miner(x * 1.0, labels)
    assert not any(t.requires_grad for t in out)


def test_factory_and_errors():
    assert list_miners() == ["all", "hard", "semi-hard", "random-hard", "batch-hard"]
    assert isinstance(create_miner("semi_hard", margin=0.1), SemiHardMiner)
    with pytest.raises(MiningError, match="semi-hard"):
        create_miner("semihardest")
    with pytest.raises(MiningError, match="bad arguments"):
        create_miner("hard", margin=0.2)
    with pytest.raises(MiningError):
        SemiHardMiner(margin=0.0)
    with pytest.raises(MiningError):
        SemiHardMiner(choice="easiest")
    x = torch.zeros(4, 3)
    with pytest.raises(MiningError, match="labels must have shape"):
        BatchHardMiner()(x, torch.tensor([0, 1, 0]))
    with pytest.raises(MiningError, match="floating"):
        BatchHardMiner()(torch.ones(4, 3, dtype=torch.int64), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(MiningError, match="integers"):
        BatchHardMiner()(x, torch.tensor([0.0, 1.0, 0.0, 1.0]))
