"""The gallery's own rule (iznet.recognize.self_rule) against the embedder's shipped rule, on simulated galleries.

Every simulated gallery (iznet.eval.openset.simulate_groups: ``--group-size`` people with ``--k`` photos each
enrolled, their other photos and ``--strangers`` other people's photos labelled) is scored under the shipped
rule (the embedder's threshold tightened to the gallery, plus its margin: ``gallery+margin``) and under the
rule the gallery chooses on its own photos for each ``--limits WRONG/STRANGERS`` pair. Faces come from a pack
of people the embedder never trained on (``--part all`` of scripts/openset_rules.py), e.g. the development
people's system crops (where settings are chosen).

    python scripts/self_rule_sim.py -e src/iznet/assets/embedder.pt \\
        --pack collection/v2/dev_detector_aligned112.pt --k 5,8 --group-size 12,48 --limits 0.01/0.1 \\
        --json runs/self_rule/dev.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from openset_rules import faces  # noqa: E402

from iznet.eval.openset import RuleSettings, simulate_groups  # noqa: E402


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def limits(text: str) -> list[tuple[float, float]]:
    """``"0.01/0.1,0.02/0.1"`` -> ``[(0.01, 0.1), (0.02, 0.1)]``."""
    out = []
    for part in text.split(","):
        w, s = part.split("/")
        out.append((float(w), float(s)))
    return out


def shipped_settings(embedder) -> RuleSettings | None:
    """The embedder's shipped unknown-face rule (threshold, gallery far, margin), or None without one."""
    cal = getattr(embedder, "calibration", None) or {}
    if cal.get("threshold") is None:
        return None
    return RuleSettings(float(cal["threshold"]), float(cal.get("gallery_far") or 0.0), float(cal.get("margin") or 0.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-e", "--embedder", required=True)
    ap.add_argument("--pack", type=Path, required=True)
    ap.add_argument("--k", type=ints, default=[5], help="photos enrolled a person, comma-separated")
    ap.add_argument("--group-size", type=ints, default=[12, 48])
    ap.add_argument("--strangers", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--limits", type=limits, default=[(0.01, 0.1)],
                    help="the gallery's own limits, WRONG/STRANGERS shares, comma-separated pairs")
    ap.add_argument("--min-members", type=int, default=None, help="iznet.recognize.self_rule.MIN_MEMBERS")
    ap.add_argument("--cap", type=float, default=None, help="the gallery's threshold never exceeds it")
    ap.add_argument("--margins", default=None, help="the margins the gallery may choose from, comma-separated "
                    "(default: iznet.recognize.self_rule.MARGINS)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(1)
    from iznet.recognize.embedder import load_embedder

    shipped = shipped_settings(load_embedder(a.embedder, device="cpu"))
    if shipped is None:
        ap.error(f"{a.embedder} has no shipped rule (meta.calibration) to compare with")
    emb, labels = faces(a.pack, "all", a.embedder, 0)
    print(f"{a.pack}: {len(set(labels.tolist()))} people, {len(labels)} faces; shipped rule: threshold "
          f"{shipped.threshold:.4f}, gallery far {shipped.far}, margin {shipped.margin}")
    print("| k | people | rule | right | wrong | strangers named | galleries that chose | median threshold / margin |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for k in a.k:
        for size in a.group_size:
            for w, s in a.limits:
                kw = {"max_wrong": w, "max_strangers": s, "cap": a.cap}
                if a.margins is not None:
                    kw["margins"] = [float(x) for x in a.margins.split(",")]
                if a.min_members is not None:
                    kw["min_members"] = a.min_members
                try:
                    out = simulate_groups(emb, labels, shipped, group_size=size, k=k, strangers=a.strangers,
                                          rounds=a.rounds, seed=0, self_rule=kw)
                except ValueError as e:
                    print(f"| {k} | {size} | skipped: {e} |")
                    continue
                sr = out["self_rule"]
                for rule in ("gallery+margin", "self"):
                    r = out["rules"][rule]
                    name = "shipped" if rule != "self" else f"self {w}/{s}"
                    extra = (f"{100 * sr['chosen']:.0f}% | {sr['threshold_median']} / {sr['margin_median']}"
                             if rule == "self" else " | ")
                    print(f"| {k} | {size} | {name} | {100 * r['right']:.1f}% | {100 * r['wrong']:.1f}% | "
                          f"{100 * r['strangers_named']:.1f}% | {extra} |")
                rows.append({"k": k, "group_size": size, "limits": [w, s], "members": out["members"],
                             "strangers": out["strangers"], "shipped": out["rules"]["gallery+margin"],
                             "self": out["rules"]["self"], "self_rule": sr})
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()},
                                      "shipped": vars(shipped), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
