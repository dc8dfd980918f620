"""A "group" from a folder of people (ROOT/<person>/<image>): the N people with the most images (at least
``--min-images``), linked into OUT/<person>/ so that scripts/finetune_group.sh can fine-tune and measure on it.

    python scripts/pick_group.py --root collection/v2/heldout_box --people 24 --min-images 18 \\
        --out runs/heldout_group24

Ties in the image count are broken by name, so the pick is the same on every run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from iznet.data.images import list_images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--people", type=int, default=24)
    ap.add_argument("--min-images", type=int, default=18)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    counts = sorted(((len(list_images(d)), d.name) for d in a.root.iterdir() if d.is_dir()), key=lambda t: (-t[0], t[1]))
    chosen = [(n, name) for n, name in counts if n >= a.min_images][: a.people]
    if len(chosen) < a.people:
        raise SystemExit(f"only {len(chosen)} people in {a.root} have {a.min_images}+ images; lower --min-images")
    for n, name in chosen:
        dst = a.out / name
        dst.mkdir(parents=True, exist_ok=True)
        for f in list_images(a.root / name):
            link = dst / f.relative_to(a.root / name).as_posix().replace("/", "__")
            if not link.exists():
                link.symlink_to(f.resolve())
    print(f"{len(chosen)} people, {sum(n for n, _ in chosen)} images ({chosen[-1][0]}-{chosen[0][0]} each) -> {a.out}")


if __name__ == "__main__":
    main()
