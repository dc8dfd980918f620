"""dlib's ResNet descriptors of every image of a box-crop pack: the teacher file of `iznet train --distill`.

    python scripts/teacher_descriptors.py --pack collection/v7/train_box112.pt --out collection/v7/teacher_dlib.pt \
        [--shard 0/2]    # two processes on two cores, then --merge
    python scripts/teacher_descriptors.py --pack collection/v7/train_box112.pt --out collection/v7/teacher_dlib.pt \
        --merge collection/v7/teacher_dlib.pt.shard0of2 collection/v7/teacher_dlib.pt.shard1of2

Each image of the pack is the project's 1.3x square around a face box (`crop` "box" in the pack's metadata);
the face box is its central 1/1.3, from which dlib's 5-point shape predictor finds the landmarks and its
ResNet aligns a 150-pixel chip and returns a 128-d descriptor (`iznet.reference.dlib_ref.DlibResNetEncoder`,
one jitter). dlib's model files are public domain (dlib-models); the descriptors are training targets only
and nothing of dlib is shipped.

The file: ``{"format": "iznet-teacher-v1", "paths": [...], "descriptors": float16 (N, 128), "meta": {...}}``,
in the pack's order; ``iznet.engine.distill`` matches it to a training pack by path.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from iznet.engine.distill import TEACHER_FORMAT as FORMAT  # the one definition of the file format


def parse_shard(text: str) -> tuple[int, int]:
    i, sep, n = text.partition("/")
    try:
        i, n = int(i), int(n)
    except ValueError:
        i = n = -1
    if not sep or n < 1 or not 0 <= i < n:
        raise SystemExit(f"error: --shard {text!r} is not I/N with 0 <= I < N (e.g. 0/2)")
    return i, n


def compute(pack_path: Path, out: Path, shard: tuple[int, int], chunk: int = 256) -> None:
    import torch

    from iznet.data.pack import load_pack
    from iznet.reference.dlib_ref import DlibResNetEncoder

    pack = load_pack(pack_path)
    if pack.meta.get("crop") != "box":
        raise SystemExit(f"error: {pack_path} holds {pack.meta.get('crop')!r} crops; the teacher needs the 1.3x box "
                         "crops (train_box112.pt)")
    i, n = shard
    idx = np.arange(len(pack))[i::n]
    enc = DlibResNetEncoder()
    s = pack.size / 1.3
    o = (pack.size - s) / 2
    box = np.array([[o, o, o + s, o + s]])
    desc = np.zeros((len(idx), 128), np.float32)
    t0 = time.time()
    for c in range(0, len(idx), chunk):
        imgs = pack.decode(idx[c:c + chunk]).permute(0, 2, 3, 1).numpy()
        for j, im in enumerate(imgs):
            desc[c + j] = enc.encode(np.ascontiguousarray(im), box)[0]
        done = c + len(imgs)
        print(f"{done}/{len(idx)} images, {(time.time() - t0) / done * 1000:.0f} ms each", file=sys.stderr, flush=True)
    torch.save({"format": FORMAT, "paths": [pack.paths[k] for k in idx], "descriptors": torch.from_numpy(desc).half(),
                "meta": {"pack": str(pack_path), "teacher": enc.describe(), "shard": f"{i}/{n}",
                         "face_box_in_crop": box[0].tolist()}}, out)


def merge(pack_path: Path, out: Path, parts: list[Path]) -> None:
    import torch

    from iznet.data.pack import load_pack

    pack = load_pack(pack_path)
    got: dict[str, torch.Tensor] = {}
    meta = None
    for p in parts:
        obj = torch.load(p, map_location="cpu", weights_only=True)
        if obj.get("format") != FORMAT:
            raise SystemExit(f"error: {p} is not a teacher shard")
        meta = meta or dict(obj["meta"])
        got.update(zip(obj["paths"], obj["descriptors"]))
    missing = [q for q in pack.paths if q not in got]
    if missing:
        raise SystemExit(f"error: {len(missing)} images of {pack_path} have no descriptor (first {missing[0]}); "
                         "run every shard")
    desc = torch.stack([got[q] for q in pack.paths])
    meta.pop("shard", None)
    torch.save({"format": FORMAT, "paths": list(pack.paths), "descriptors": desc, "meta": meta}, out)
    print(f"{out}: {len(desc)} descriptors")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--shard", default="0/1", help="I/N: every N-th image from the I-th (default 0/1: all)")
    ap.add_argument("--merge", type=Path, nargs="+", help="shard files to put together in the pack's order")
    a = ap.parse_args()
    if a.merge:
        merge(a.pack, a.out, a.merge)
        return
    i, n = parse_shard(a.shard)
    target = a.out if n == 1 else a.out.with_name(f"{a.out.name}.shard{i}of{n}")
    compute(a.pack, target, (i, n))
    print(target)


if __name__ == "__main__":
    main()
