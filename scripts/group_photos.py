"""The user's photos of a group: the first K pictures of each person (the split `benchmarks/bench_group.py
--enroll K` enrols), linked into OUT/<person>/ for `iznet fit` or a fine-tuning run; the rest of each
person's pictures stay for the benchmark.

    python scripts/group_photos.py ../shared/data/glint24 20 runs/glint24_k20/photos
"""

from __future__ import annotations

import argparse
from pathlib import Path

from iznet.eval.group import split_group


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", help="the group: ROOT/<person>/<image>, or glint24's folder")
    ap.add_argument("k", type=int, help="pictures a person taken as the user's photos")
    ap.add_argument("out", type=Path)
    a = ap.parse_args()
    n = 0
    for s in split_group(a.root, a.k):
        (a.out / s.person).mkdir(parents=True, exist_ok=True)
        for f in s.enroll:
            dst = a.out / s.person / f.name
            if not dst.exists():
                dst.symlink_to(f.resolve())
            n += 1
    print(f"{n} photos of the group linked under {a.out}")


if __name__ == "__main__":
    main()
