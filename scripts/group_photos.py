"""The user's photos of a group: the first K pictures of each person (the split `benchmarks/bench_group.py
--enroll K` enrols), linked into OUT/<person>/ for `iznet fit` or a fine-tuning run; the rest of each
person's pictures stay for the benchmark.

    python scripts/group_photos.py ../shared/data/glint24 20 runs/glint24_k20/photos
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from iznet.errors import IznetError
from iznet.eval.group import split_group


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", help="the group: ROOT/<person>/<image>, or glint24's folder")
    ap.add_argument("k", type=int, help="pictures a person taken as the user's photos")
    ap.add_argument("out", type=Path)
    a = ap.parse_args(argv)
    try:
        splits = split_group(a.root, a.k)
    except IznetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = 0
    for s in splits:
        (a.out / s.person).mkdir(parents=True, exist_ok=True)
        for f in s.enroll:
            dst = a.out / s.person / f.name
            if not dst.exists():
                dst.symlink_to(f.resolve())
            n += 1
    print(f"{n} photos of the group linked under {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
