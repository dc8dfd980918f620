"""Choose an embedder's spread rule (iznet.recognize.matcher.SpreadRule) on development people, or score one.

The shipped unknown-face rule names a face when its distance is under the calibrated threshold and the runner-up
is at least a margin further away. The spread rule adds what the gallery knows about the nearest person: a face is
named when ``distance - a * spread - b * margin <= c`` and the distance is at most ``cap`` (a gallery of one
person keeps the threshold), where ``spread`` is the mean distance between two of that person's enrolled photos,
shrunk towards ``prior`` by ``n0`` pairs. Galleries are simulated as in ``scripts/openset_rules.py`` (iznet.eval.openset.probe_features): people
enrolled with each of ``--ks`` photos, in galleries of each of ``--group-size`` people, with strangers. ``prior``
is the development people's median spread of 5 photos; (cap, a, b, n0, c) is the grid point with the most right names
on average over those settings among the points keeping wrong names <= --max-wrong and named strangers
<= --max-strangers-named at every setting (with --at-most-shipped: at most the threshold + --margin rule's own
wrong names and named strangers, setting by setting). The shipped rule's shares on the same galleries are printed beside it.

    OMP_NUM_THREADS=1 python scripts/choose_spread_rule.py -e runs/x/model.pt \\
        --pack collection/v2/dev_detector_aligned112.pt --threshold 0.904 --json runs/x/eval/spread_dev.json
    # score the chosen rule on people never used to choose anything
    python scripts/choose_spread_rule.py -e runs/x/model.pt --pack collection/v2/heldout_aligned112.pt \\
        --threshold 0.904 --rule runs/x/eval/spread_dev.json --json runs/x/eval/spread_heldout.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch


def numbers(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def margin_rule_shares(f: dict, threshold: float, margin: float) -> dict:
    """The threshold + margin rule's shares on :func:`iznet.eval.openset.probe_features` rows."""
    M, S = f["members"], f["strangers"]
    nm = (M[:, 0] <= threshold) & (M[:, 1] - M[:, 0] >= margin)
    ns = (S[:, 0] <= threshold) & (S[:, 1] - S[:, 0] >= margin)
    right = M[:, 4] == 1
    return {"right": float(np.mean(nm & right)), "wrong": float(np.mean(nm & ~right)),
            "strangers_named": float(np.mean(ns))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-e", "--embedder", required=True)
    ap.add_argument("--pack", type=Path, required=True, help="faces of people the embedder never trained on")
    ap.add_argument("--threshold", type=float, required=True, help="the embedder's calibrated threshold")
    ap.add_argument("--caps", default="0,0.05,0.1,0.15,0.2,0.3", help="grid of the cap, added to --threshold")
    ap.add_argument("--margin", type=float, default=0.0, help="the shipped margin, for the comparison")
    ap.add_argument("--ks", default="2,3,5", help="photos enrolled per person")
    ap.add_argument("--group-size", default="3,12,48", help="people per gallery")
    ap.add_argument("--strangers", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--a", default="0,0.5,0.75,1,1.25,1.5,2", help="grid of a (weight of the spread)")
    ap.add_argument("--b", default="0,0.5,1,2,3,4", help="grid of b (weight of the margin)")
    ap.add_argument("--n0", default="1,3,5,10", help="grid of n0 (pairs of shrinkage to the prior)")
    ap.add_argument("--c", default="-2:1.5:0.0025", help="start:stop:step of the cut c")
    ap.add_argument("--max-wrong", type=float, default=0.01)
    ap.add_argument("--max-strangers-named", type=float, default=0.1)
    ap.add_argument("--at-most-shipped", action="store_true",
                    help="limits per setting: the wrong names and named strangers of the threshold + --margin rule "
                         "there (a rule that never errs more than the shipped one), in place of the two maxima")
    ap.add_argument("--rule", type=Path, default=None, help="score the rule 'chosen' in this JSON instead")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)

    from iznet.data.pack import load_pack
    from iznet.errors import IznetError
    from iznet.eval.openset import choose_spread_rule, probe_features, spread_prior, spread_shares
    from iznet.recognize.embedder import load_embedder
    from iznet.recognize.matcher import SpreadRule

    rule = None
    if a.rule is not None:
        try:
            ch = json.loads(a.rule.read_text())["chosen"]
            rule = SpreadRule.from_dict({k: ch[k] for k in SpreadRule.KEYS})
        except (OSError, ValueError, KeyError, TypeError, IznetError) as e:
            ap.error(f"--rule {a.rule}: no readable chosen spread rule ({e}); write one with this script first")
    try:
        ks = [int(x) for x in numbers(a.ks)]
        sizes = [int(x) for x in numbers(a.group_size)]
        lo, hi, step = (float(x) for x in a.c.split(":"))
        grids = [[a.threshold + x for x in numbers(a.caps)], numbers(a.a), numbers(a.b), numbers(a.n0)]
    except ValueError as e:
        ap.error(f"bad --ks, --group-size, --a, --b, --n0 or --c: {e}")
    try:
        p = load_pack(a.pack)
    except (OSError, IznetError) as e:
        ap.error(f"--pack {a.pack}: {e}")
    names = np.array([p.classes[int(lab)] for lab in p.labels])
    emb = np.asarray(load_embedder(a.embedder, device="cpu").embed(p.decode()), dtype=np.float64)
    try:
        feats = {(k, g): probe_features(emb, names, group_size=g, k=k, strangers=a.strangers, rounds=a.rounds)
                 for k in ks for g in sizes}
    except ValueError as e:
        ap.error(f"{a.pack}: {e}")
    baseline = {str(key): margin_rule_shares(f, a.threshold, a.margin) for key, f in feats.items()}
    out = {"args": {k: str(v) for k, v in vars(a).items()}, "people": int(len(set(names.tolist()))),
           "faces": int(len(names)), "shipped_margin_rule": baseline}
    print(f"{a.pack}: {out['people']} people, {out['faces']} faces; {a.rounds} galleries per setting "
          f"(photos enrolled, people): {', '.join(map(str, feats))}")
    if rule is None:
        prior = spread_prior(emb, names, 5)
        limits = (a.max_wrong, a.max_strangers_named)
        if a.at_most_shipped:
            limits = ({key: baseline[str(key)]["wrong"] for key in feats},
                      {key: baseline[str(key)]["strangers_named"] for key in feats})
        chosen, rows = choose_spread_rule(feats, prior, *grids, np.arange(lo, hi + step / 2, step), *limits)
        rows.sort(key=lambda r: -r["right"])
        out.update({"prior": prior, "chosen": chosen, "rows": rows})
        print(f"prior spread {prior:.4f}; best rows (right: mean over settings; wrong, strangers named: the worst)")
        print("| cap | a | b | n0 | c | right | wrong | strangers named |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows[:8]:
            print(f"| {r['cap']:.4f} | {r['a']} | {r['b']} | {r['n0']} | {r['c']:.4f} | {100 * r['right']:.1f}% | "
                  f"{100 * r['wrong']:.2f}% | {100 * r['strangers_named']:.1f}% |")
        if chosen is None:
            print("no rule keeps the limits", file=sys.stderr)
        else:
            rule = SpreadRule.from_dict({k: chosen[k] for k in SpreadRule.KEYS})
    if rule is not None:
        out["rule"] = rule.to_dict()
        out["spread_rule"] = {str(key): spread_shares(f, rule) for key, f in feats.items()}
        print(f"rule {rule.to_dict()}; against the threshold {a.threshold} + margin {a.margin}")
        print("| photos, people | spread rule: right / wrong / strangers named | shipped rule |")
        print("|---|---|---|")
        for key in map(str, feats):
            s, b = out["spread_rule"][key], baseline[key]
            print(f"| {key} | {100 * s['right']:.1f}% / {100 * s['wrong']:.2f}% / {100 * s['strangers_named']:.1f}% "
                  f"| {100 * b['right']:.1f}% / {100 * b['wrong']:.2f}% / {100 * b['strangers_named']:.1f}% |")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0 if rule is not None else 1


if __name__ == "__main__":
    sys.exit(main())
