"""Per-population rows of a `benchmarks/bench_group.py` result: right / wrong / nearest-right shares of each
system, split by what `collection/v2/identities.csv` says of each person (gender where the source gives it,
the source set), so the gap to dlib can be read per population, not only on average.

    python scripts/bench_breakdown.py docs/results/detector_v2/bench_heldout/bench.json \\
        --identities collection/v2/identities.csv --md docs/results/embedder_v4/bench_heldout_by_population.md

Shares are pooled over the pictures of the people in a row (as in bench_group's own table).
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

FIELDS = ("correct", "wrong", "unknown", "no_face", "nearest_correct", "n")


def populations(identities: Path) -> dict[str, dict[str, str]]:
    """Per identity, keyed by the folder name bench_group reports (``fiw/F0009_MID1`` is unpacked as
    ``fiw__F0009_MID1``): its gender (FIW gives it; the named sources do not) and its first source."""
    out = {}
    for r in csv.DictReader(open(identities, newline="")):
        source = r["sources"].split("+")[0].split(";")[0] or "?"
        gender = {"f": "women", "m": "men"}.get(r["gender"], "gender not given")
        out[r["identity"].replace("/", "__")] = {"gender": gender, "source": source}
    return out


def review_groups(path: Path) -> dict[str, str]:
    """person -> "in training" / "not found in training", from a review file of `scripts/overlap_check.py`'s
    contact sheets (columns ``person,in_training``; docs/data.md, "Evaluation people in the training data")."""
    out = {}
    for r in csv.DictReader(open(path, newline="")):
        out[r["person"].replace("/", "__")] = "in training" if r["in_training"] == "yes" else "not found in training"
    return out


def breakdown(bench: dict, pops: dict[str, dict[str, str]], review: dict[str, str] | None = None) -> list[dict]:
    rows = []
    for system, res in bench["systems"].items():
        groups: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
        for person, c in res["people"].items():
            pop = pops.get(person, {"gender": "unknown person", "source": "unknown person"})
            keys = [("all", "all"), ("gender", pop["gender"]), ("source", pop["source"])]
            if review is not None:
                keys.append(("training", review.get(person, "not reviewed")))
            for key in keys:
                g = groups[key]
                for f in FIELDS:
                    g[f] += int(c.get(f, 0))
                g["people"] = g.get("people", 0) + 1
        for (kind, name), g in sorted(groups.items()):
            n = max(1, g["n"])
            rows.append({"system": system, "by": kind, "group": name, "people": g["people"], "pictures": g["n"],
                         "right": g["correct"] / n, "wrong": g["wrong"] / n, "nearest_right": g["nearest_correct"] / n})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bench", type=Path)
    ap.add_argument("--identities", type=Path, default=Path("collection/v2/identities.csv"))
    ap.add_argument("--review", type=Path, default=None,
                    help="also rows for the people found in the training data and the others (a review CSV)")
    ap.add_argument("--md", type=Path)
    a = ap.parse_args()
    if a.review and not a.review.is_file():
        raise SystemExit(f"--review {a.review}: no such file (columns person,in_training; "
                         "docs/results/overlap_v5/glint24_review.csv is one)")
    rows = breakdown(json.loads(a.bench.read_text()), populations(a.identities),
                     review_groups(a.review) if a.review else None)
    lines = [f"Per population, from `{a.bench}` (command: `{json.loads(a.bench.read_text())['command']}`); "
             f"people from `{a.identities}`" + (f", training review `{a.review}`" if a.review else "") + ".", "",
             "| by | group | people | pictures | " + " | ".join(f"{s} right / wrong / nearest" for s in
                                                              dict.fromkeys(r["system"] for r in rows)) + " |",
             "|---|---|---|---|" + "---|" * len(dict.fromkeys(r["system"] for r in rows))]
    keyed = defaultdict(dict)
    for r in rows:
        keyed[(r["by"], r["group"], r["people"], r["pictures"])][r["system"]] = r
    for (by, group, people, pictures), per in keyed.items():
        cells = [f"{100 * r['right']:.1f}% / {100 * r['wrong']:.1f}% / {100 * r['nearest_right']:.1f}%"
                 for r in per.values()]
        lines.append(f"| {by} | {group} | {people} | {pictures} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.md:
        a.md.write_text(text)


if __name__ == "__main__":
    main()
