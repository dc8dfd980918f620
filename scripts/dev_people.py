"""Write the development people a run on a collection pack holds out (seed, share as `iznet train` draws them),
one name a line, for `iznet train --dev-people FILE`: a run on another collection can then hold out the same
people, and two models compare on people neither trained on.

    python scripts/dev_people.py collection/v2/train_aligned112.pt --out collection/v2/dev_people.txt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from iznet.engine.data import development_people


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pack", help="a collection pack (train_*112.pt)")
    ap.add_argument("--seed", type=int, default=0, help="the run's --seed")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    names = development_people(a.pack, seed=a.seed)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(f"# development people of a run on {a.pack} with seed {a.seed}\n" + "\n".join(names) + "\n",
                     encoding="utf-8")
    print(f"wrote {len(names)} people to {a.out}")


if __name__ == "__main__":
    main()
