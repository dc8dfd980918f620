"""Time iznet's miners (and the triplet loss) on one P×K batch, beside pytorch-metric-learning when installed.

    python benchmarks/bench_mining.py                       # P=32, K=4, D=128, CPU or CUDA
    python benchmarks/bench_mining.py --device cpu --repeats 50 --out bench_mining.json
    python benchmarks/bench_mining.py --samplers [--identity-root DIR]  # the samplers instead (numpy, CPU)

pytorch-metric-learning (PML) is not a dependency of iznet; ``pip install pytorch-metric-learning`` to get
the comparison. The PML column is the nearest equivalent, and only "batch-hard" and "all" return the same
triplets. PML's TripletMarginMiner returns every triplet that meets its condition, while iznet's
"hard", "semi-hard" and "random-hard" return one negative per anchor–positive pair. Both run in the same
process on the same batch, so the ratio is a fair comparison of cost, not of output.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from fractions import Fraction
from math import comb
from pathlib import Path

import numpy as np
import torch

from iznet.losses import TripletLoss
from iznet.mining import create_miner


def timeit(fn, repeats: int, device: torch.device) -> float:
    """Median seconds per call after warm-up."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def pml_equivalents(margin: float):
    try:
        from pytorch_metric_learning import losses, miners
        from pytorch_metric_learning.distances import LpDistance
        from pytorch_metric_learning.utils import loss_and_miner_utils as lmu
    except ImportError:
        return None
    sq = LpDistance(normalize_embeddings=False, power=2)
    return {
        "all": ("get_all_triplets_indices", lambda x, y: lmu.get_all_triplets_indices(y)),
        "hard": ("TripletMarginMiner(hard)", miners.TripletMarginMiner(margin, "hard", distance=sq)),
        "semi-hard": ("TripletMarginMiner(semihard)", miners.TripletMarginMiner(margin, "semihard", distance=sq)),
        "random-hard": ("TripletMarginMiner(all)", miners.TripletMarginMiner(margin, "all", distance=sq)),
        "batch-hard": ("BatchHardMiner", miners.BatchHardMiner(distance=sq)),
        "loss(all)": ("TripletMarginLoss", losses.TripletMarginLoss(margin=margin, distance=sq)),
    }


def identity_labels(root: Path | None) -> tuple[np.ndarray, str]:
    """Labels of a ``root/<person>/<image>`` tree (files counted, not read), else an LFW-shaped synthetic set."""
    if root is not None and root.is_dir():
        counts = [sum(1 for f in d.iterdir() if f.is_file()) for d in sorted(root.iterdir()) if d.is_dir()]
        counts = [c for c in counts if c > 0]
        return np.repeat(np.arange(len(counts)), counts), str(root)
    rng = np.random.default_rng(0)  # 5,749 people, Zipf-like sizes: LFW's shape, not its data
    counts = np.minimum(rng.zipf(2.2, 5749), 530)
    return np.repeat(np.arange(len(counts)), counts), "synthetic (Zipf sizes, 5749 people)"


def algorithm2_gap(labels: np.ndarray) -> dict:
    """How far the write-up's Algorithm 2 is from uniform on this layout (exact arithmetic per class).

    Returns the total variation distance to the uniform distribution over triplets and the ratio of
    the largest to the smallest per-triplet probability, (N − n_min)/(N − n_max) over classes with pairs.
    """
    sizes = [int(c) for c in np.unique(labels, return_counts=True)[1]]
    n_total = len(labels)
    t_total = sum(comb(n, 2) * (n_total - n) for n in sizes)
    w_total = sum(comb(n, 2) for n in sizes)
    tv = Fraction(0)
    for n in sizes:
        if n >= 2:
            tv += comb(n, 2) * (n_total - n) * abs(Fraction(1, w_total * (n_total - n)) - Fraction(1, t_total))
    with_pairs = [n for n in sizes if n >= 2]
    return {"items": n_total, "people": len(sizes), "triplets": t_total, "tv_distance": float(tv / 2),
            "max_over_min_prob": (n_total - min(with_pairs)) / (n_total - max(with_pairs))}


def bench_samplers(root: Path | None, draws: int, repeats: int) -> None:
    from iznet.sampling import Algorithm2TripletSampler, UniformPairSampler, UniformTripletSampler

    labels, source = identity_labels(root)
    gap = algorithm2_gap(labels)
    print(json.dumps({"layout": source, **gap, "draws": draws}))
    for name, sampler, fn in [
        ("UniformTripletSampler", UniformTripletSampler(labels, seed=0), lambda s: s.sample(draws)),
        ("Algorithm2TripletSampler", Algorithm2TripletSampler(labels, seed=0), lambda s: s.sample(draws)),
        ("UniformPairSampler", UniformPairSampler(labels, seed=0), lambda s: s.sample(draws)),
    ]:
        sec = timeit(lambda: fn(sampler), repeats, torch.device("cpu"))
        print(f"{name:<26} {1e3 * sec:9.1f} ms per {draws} draws  ({1e9 * sec / draws:6.1f} ns per draw)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--p", type=int, default=32)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--margin", type=float, default=0.2)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--samplers", action="store_true", help="time the samplers instead of the miners")
    ap.add_argument("--identity-root", type=Path, default=None,
                    help="<root>/<person>/<image> tree for --samplers (default: ../shared/data/lfw/images)")
    ap.add_argument("--draws", type=int, default=1_000_000)
    args = ap.parse_args()

    if args.samplers:
        root = args.identity_root
        if root is None:
            from iznet.data.paths import shared_data_root

            shared = shared_data_root()
            root = None if shared is None else shared / "lfw" / "images"
        bench_samplers(root, args.draws, min(args.repeats, 10))
        return

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(args.p).repeat_interleave(args.k).to(device)
    x = torch.nn.functional.normalize(torch.randn(args.p * args.k, args.dim, generator=g), dim=1).to(device)

    ours = {name: create_miner(name, margin=args.margin, seed=0) if name in ("semi-hard", "random-hard")
            else create_miner(name) for name in ("all", "hard", "semi-hard", "random-hard", "batch-hard")}
    loss_fn = TripletLoss(margin=args.margin)
    pml = pml_equivalents(args.margin)

    rows = []
    for name in [*ours, "loss(all)"]:
        if name == "loss(all)":
            ours_fn = lambda: loss_fn(x, labels)  # noqa: E731
            n_ours = len(ours["all"](x, labels)[0])
        else:
            ours_fn = lambda m=ours[name]: m(x, labels)  # noqa: E731
            n_ours = len(ours_fn()[0])
        row = {"what": name, "iznet_ms": 1e3 * timeit(ours_fn, args.repeats, device), "iznet_triplets": n_ours}
        if pml is not None:
            label, ref = pml[name]
            ref_fn = lambda r=ref: r(x, labels)  # noqa: E731
            out = ref_fn()
            row.update(pml=label, pml_ms=1e3 * timeit(ref_fn, args.repeats, device),
                       pml_triplets=len(out[0]) if isinstance(out, tuple) else None)
            row["ratio_pml_over_iznet"] = row["pml_ms"] / row["iznet_ms"]
            if name == "loss(all)":
                row["abs_diff"] = abs(float(ref(x, labels)) - float(loss_fn(x, labels)))
        rows.append(row)

    env = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "cpu": platform.processor() or platform.machine(), "batch": f"P={args.p} K={args.k} D={args.dim}",
           "margin": args.margin, "repeats": args.repeats, "pml": pml is not None}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    print(json.dumps(env))
    head = f"{'what':<12} {'iznet ms':>9} {'#trip':>7}"
    if pml is not None:
        head += f"  {'PML equivalent':<28} {'PML ms':>8} {'#trip':>7} {'PML/iznet':>9}"
    print(head)
    for r in rows:
        line = f"{r['what']:<12} {r['iznet_ms']:>9.3f} {r['iznet_triplets']:>7}"
        if pml is not None:
            nt = "" if r["pml_triplets"] is None else r["pml_triplets"]
            line += f"  {r['pml']:<28} {r['pml_ms']:>8.3f} {nt!s:>7} {r['ratio_pml_over_iznet']:>9.2f}"
            if "abs_diff" in r:
                line += f"  |loss diff| {r['abs_diff']:.2e}"
        print(line)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"env": env, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
