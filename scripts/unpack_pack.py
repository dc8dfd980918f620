"""Write a pack's images back out as an identity folder OUT/<class>/<n>.jpg (the stored JPEG bytes as they are).

For tools that read folders (benchmarks/bench_group.py, iznet eval group); "/" in class names becomes "__".
Only people with at least --min-images images are written.

    python scripts/unpack_pack.py collection/v2/heldout_box112.pt collection/v2/heldout_box --min-images 6
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from iznet.data.pack import load_pack


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pack", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--min-images", type=int, default=1)
    args = ap.parse_args()
    p = load_pack(args.pack)
    labels = p.labels.tolist()
    n = Counter(labels)
    written, people = 0, set()
    seen: Counter = Counter()
    for i, lab in enumerate(labels):
        if n[lab] < args.min_images:
            continue
        name = p.classes[lab].replace("/", "__")
        d = args.out / name
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{seen[lab]:04d}.jpg").write_bytes(p.image_bytes(i).numpy().tobytes())
        seen[lab] += 1
        written += 1
        people.add(lab)
    print(f"wrote {written} images of {len(people)} people to {args.out} "
          f"(left out {sum(1 for v in n.values() if v < args.min_images)} people with < {args.min_images} images)")


if __name__ == "__main__":
    main()
