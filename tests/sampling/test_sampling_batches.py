"""P×K batches: shapes, people, determinism, resume, DataLoader use."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iznet.sampling import PKBatchSampler, SamplingError


def make_labels():
    # 10 people with 1..6 images (person 0 has a single image), shuffled
    sizes = [1, 2, 3, 4, 5, 6, 2, 4, 6, 3]
    return np.random.default_rng(0).permutation(np.repeat(np.arange(10) * 10, sizes))


def test_shapes_people_and_images():
    labels = make_labels()
    s = PKBatchSampler(labels, p=3, k=4, seed=1)
    assert s.num_people == 9  # the single-image person is left out (min_images=2)
    batches = list(s)
    assert len(batches) == len(s) == 3
    seen = []
    for b in batches:
        assert len(b) == 12 and all(isinstance(i, int) for i in b)
        people = labels[b].reshape(3, 4)
        assert (people == people[:, :1]).all()  # K consecutive images per person
        assert len(set(people[:, 0])) == 3  # P distinct people
        for row, idx in zip(people[:, 0], np.array(b).reshape(3, 4)):
            n_images = int((labels == row).sum())
            # distinct images when the person has >= K, otherwise all of them (then repeats)
            assert len(set(idx)) == min(4, n_images)
        seen.extend(people[:, 0].tolist())
    assert len(set(seen)) == 9  # an epoch visits each person once


def test_drop_last_and_min_images():
    labels = make_labels()
    assert len(PKBatchSampler(labels, p=4, k=2)) == 2
    s = PKBatchSampler(labels, p=4, k=2, drop_last=False)
    sizes = [len(b) for b in s]
    assert sizes == [8, 8, 2]
    assert PKBatchSampler(labels, p=2, k=2, min_images=1).num_people == 10
    assert PKBatchSampler(labels, p=2, k=2, min_images=5).num_people == 3
    with pytest.raises(SamplingError, match="fewer than p"):
        PKBatchSampler(labels, p=10, k=2)


def test_deterministic_and_fresh_each_epoch():
    labels = make_labels()
    a, b = PKBatchSampler(labels, p=3, k=2, seed=7), PKBatchSampler(labels, p=3, k=2, seed=7)
    e0 = list(a)
    assert e0 == list(b)
    e1 = list(a)  # the epoch advances by itself
    assert a.epoch == 2 and e1 != e0
    a.set_epoch(0)
    assert list(a) == e0
    assert list(PKBatchSampler(labels, p=3, k=2, seed=8)) != e0


def test_exact_resume_mid_epoch():
    labels = make_labels()
    s = PKBatchSampler(labels, p=2, k=3, seed=3)
    s.set_epoch(5)
    full = list(s)
    s.set_epoch(5)
    it = iter(s)
    first = [next(it), next(it)]
    state = s.state_dict()
    assert state == {"seed": 3, "epoch": 5, "batch": 2}
    fresh = PKBatchSampler(labels, p=2, k=3, seed=3)
    fresh.load_state_dict(state)
    assert first + list(fresh) == full
    assert fresh.state_dict() == {"seed": 3, "epoch": 6, "batch": 0}
    with pytest.raises(SamplingError, match="seed"):
        PKBatchSampler(labels, p=2, k=3, seed=4).load_state_dict(state)
    with pytest.raises(SamplingError, match="lacks"):
        fresh.load_state_dict({"seed": 3})


def test_works_as_dataloader_batch_sampler():
    labels = make_labels()
    data = torch.utils.data.TensorDataset(torch.arange(len(labels)), torch.as_tensor(labels))
    sampler = PKBatchSampler(labels, p=3, k=2, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_sampler=sampler)
    assert len(loader) == 3
    got = [(idx.tolist(), lab.tolist()) for idx, lab in loader]
    sampler.set_epoch(0)
    assert [g[0] for g in got] == list(sampler)
    assert all(lab == labels[idx].tolist() for idx, lab in got)


@pytest.mark.parametrize("kw", [{"p": 0, "k": 2}, {"p": 2, "k": 0}, {"p": 2.0, "k": 2}, {"p": 2, "k": 2, "seed": -1}])
def test_bad_arguments_raise(kw):
    with pytest.raises(SamplingError):
        PKBatchSampler(make_labels(), **kw)


def _singleton_labels():
    # 6 people with 3..5 images and 7 people with one image each
    sizes = [3, 4, 5, 3, 4, 5] + [1] * 7
    return np.random.default_rng(1).permutation(np.repeat(np.arange(13), sizes))


def test_extra_negatives_from_left_out_people():
    from scipy.stats import chisquare

    labels = _singleton_labels()
    plain = PKBatchSampler(labels, p=3, k=2, seed=5)
    s = PKBatchSampler(labels, p=3, k=2, seed=5, extra=4)
    assert s.num_people == 6 and len(s) == len(plain) == 2
    pool = set(np.flatnonzero(np.isin(labels, np.arange(6, 13))).tolist())
    assert set(s.extra_pool.tolist()) == pool
    counts = np.zeros(len(labels))
    for epoch in range(1500):
        s.set_epoch(epoch)
        plain.set_epoch(epoch)
        for b, b0 in zip(s, plain):
            assert len(b) == 3 * 2 + 4
            assert b[:6] == b0  # the P·K part is the batch without extras
            extra = b[6:]
            assert len(set(extra)) == 4 and set(extra) <= pool  # distinct, from one-image people
            assert not set(labels[extra]) & set(labels[b[:6]])  # no positive for them in the batch
            counts[extra] += 1
    assert chisquare(counts[sorted(pool)]).pvalue > 1e-3  # uniform over the pool


def test_extra_negatives_are_never_anchors_or_positives():
    from iznet.mining import create_miner

    labels = _singleton_labels()
    b = PKBatchSampler(labels, p=3, k=2, seed=0, extra=5).batch_indices(0, 0)
    lab = torch.as_tensor(labels[b])
    emb = torch.nn.functional.normalize(torch.randn(len(b), 8, generator=torch.Generator().manual_seed(0)), dim=1)
    for name in ("all", "hard", "semi-hard", "batch-hard", "random-hard"):
        a, p, n = create_miner(name)(emb, lab)
        assert len(a) > 0 or name == "semi-hard"
        assert (a < 6).all() and (p < 6).all(), name  # the extras (positions 6..10) only as negatives
        assert (lab[a] == lab[p]).all() and (lab[a] != lab[n]).all()
    a, p, n = create_miner("all")(emb, lab)
    assert (n >= 6).any()


def test_extra_negatives_errors():
    labels = _singleton_labels()
    with pytest.raises(SamplingError, match="only 7 images"):
        PKBatchSampler(labels, p=3, k=2, extra=8)
    with pytest.raises(SamplingError, match="extra"):
        PKBatchSampler(labels, p=3, k=2, extra=-1)


@pytest.mark.parametrize("people_weight", ["images", "sqrt"])
def test_weighted_people_follow_successive_sampling(people_weight):
    """Ordered (first, second) people of P=2 batches against the exact successive-sampling law
    P(i, j) = w_i / W · w_j / (W − w_i), by chi-square; and every batch keeps its P×K shape."""
    from scipy.stats import chisquare

    labels = make_labels()
    s = PKBatchSampler(labels, p=2, k=3, seed=5, people_weight=people_weight)
    people = s.people
    n = np.array([(labels == s.layout.classes[c]).sum() for c in people], dtype=float)
    w = n if people_weight == "images" else np.sqrt(n)
    W = w.sum()
    expected = {(a, b): w[i] / W * w[j] / (W - w[i])
                for i, a in enumerate(people) for j, b in enumerate(people) if i != j}
    keys = sorted(expected)
    counts = dict.fromkeys(keys, 0)
    draws = 0
    for epoch in range(1000):
        for b in range(len(s)):
            got = s.batch_people(epoch, b)
            counts[(int(got[0]), int(got[1]))] += 1
            draws += 1
    obs = np.array([counts[k] for k in keys])
    exp = np.array([expected[k] for k in keys]) * draws
    assert chisquare(obs, exp).pvalue > 1e-3
    # the uniform weighting's law is rejected by the same test on these counts (the test has power)
    flat = np.full(len(keys), draws / len(keys))
    assert chisquare(obs, flat).pvalue < 1e-6
    b = s.batch_indices(3, 1)
    assert len(b) == 6 and len(set(labels[b[:3]])) == 1 and len(set(labels[b[3:]])) == 1
    assert s.batch_indices(3, 1) == b  # deterministic


def test_people_weight_is_checked():
    with pytest.raises(SamplingError, match="people_weight 'count'"):
        PKBatchSampler(make_labels(), p=2, k=2, people_weight="count")


# ------------------------------------------------------------------------------------ look-alike groups
def test_lookalike_table_matches_a_loop():
    from iznet.sampling.batches import lookalike_table

    rng = np.random.default_rng(4)
    d = rng.normal(size=(23, 5))
    d[7] = 0.0  # a class without a direction is nobody's near neighbour ahead of a real one
    got = lookalike_table(d, m=4, chunk=5)
    u = [v / np.linalg.norm(v) if np.linalg.norm(v) > 0 else v for v in d]
    for c in range(len(d)):
        sims = sorted(((-float(u[c] @ u[o]), o) for o in range(len(d)) if o != c))
        assert got[c].tolist() == [o for _, o in sims[:4]], c
    assert lookalike_table(d[:3], m=5).tolist()[0][2:] == [-1, -1, -1]  # only two others exist
    with pytest.raises(SamplingError, match="directions must be"):
        lookalike_table(np.zeros(4), m=2)


def _groups_by_loop(drawn, table, takes_part, p, g):
    chosen = []
    for s in drawn:
        if len(chosen) >= p:
            break
        if s in chosen:
            continue
        chosen.append(s)
        for c in table[s]:
            if len(chosen) >= p or sum(1 for x in chosen[chosen.index(s):]) >= g:
                break
            if c >= 0 and takes_part[c] and c not in chosen:
                chosen.append(c)
    return chosen


@pytest.mark.parametrize("group,weight", [(2, "images"), (3, "uniform"), (4, "sqrt")])
def test_lookalike_batches_match_a_loop(group, weight):
    from iznet.sampling.batches import lookalike_table

    labels = np.repeat(np.arange(30), np.r_[[1] * 4, np.arange(2, 28)])  # people 0-3 have one image
    rng = np.random.default_rng(0)
    table = lookalike_table(rng.normal(size=(30, 6)), m=6)
    s = PKBatchSampler(labels, p=8, k=2, seed=1, people_weight=weight, lookalikes=table, group=group)
    takes_part = np.isin(np.arange(30), s.people)
    for b in range(6):
        u = np.random.default_rng([1, 0, b, 1]).random(len(s.people))
        drawn = s.people[np.argsort(-(np.log(u) / s.weights), kind="stable")].tolist()
        want = _groups_by_loop(drawn, table, takes_part, 8, group)
        got = s.batch_people(0, b)
        assert got.tolist() == want and len(set(want)) == 8 and takes_part[got].all()
        assert len(s.batch_indices(0, b)) == 16


def test_lookalike_seeds_follow_successive_sampling():
    from scipy.stats import chisquare

    from iznet.sampling.batches import lookalike_table

    labels = np.repeat(np.arange(12), np.arange(2, 14))
    table = lookalike_table(np.random.default_rng(2).normal(size=(12, 4)), m=4)
    s = PKBatchSampler(labels, p=4, k=2, seed=0, people_weight="images", lookalikes=table, group=2)
    first = np.array([s.batch_people(e, 0)[0] for e in range(4000)])
    obs = np.bincount(first, minlength=12)
    sizes = np.arange(2, 14)
    assert chisquare(obs, sizes / sizes.sum() * len(first)).pvalue > 1e-3  # the first seed ∝ images


def test_lookalike_errors():
    labels = np.repeat(np.arange(6), 3)
    with pytest.raises(SamplingError, match="needs a lookalikes table"):
        PKBatchSampler(labels, p=4, k=2, group=2)
    with pytest.raises(SamplingError, match=r"integer \(6, M\) table"):
        PKBatchSampler(labels, p=4, k=2, group=2, lookalikes=np.zeros((5, 2), dtype=int))
    with pytest.raises(SamplingError, match="outside -1..5"):
        PKBatchSampler(labels, p=4, k=2, group=2, lookalikes=np.full((6, 2), 6))
    with pytest.raises(SamplingError, match="larger than p=4"):
        PKBatchSampler(labels, p=4, k=2, group=5, lookalikes=np.zeros((6, 2), dtype=int))
