"""JPEG quality vs pack size and fidelity for LFW face crops: pick the quality of ``iznet pack lfw``.

Crops a seeded random sample of LFW images with ``lfw_crop``, encodes them at several JPEG
qualities with ``torchvision.io.encode_jpeg`` (as packs do), and prints the mean bytes per image,
the size a pack of all 13,233 images would have, and the mean PSNR against the uncompressed crops.

    python scripts/pack_quality_sweep.py --size 112 --n 1000 [--data DIR]
"""

from __future__ import annotations

import argparse
import random

import numpy as np
import torch
from torchvision.io import decode_jpeg, encode_jpeg

from iznet.data.crops import lfw_crop
from iznet.data.images import load_image
from iznet.data.lfw import LFW, find_lfw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="data root or LFW folder")
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--qualities", default="75,80,82,85,90,95")
    args = ap.parse_args()

    folder = LFW(find_lfw(args.data)).identity_folder()
    idx = random.Random(args.seed).sample(range(len(folder)), min(args.n, len(folder)))
    crops = [torch.from_numpy(np.ascontiguousarray(lfw_crop(load_image(folder.paths[i]), args.size).transpose(2, 0, 1)))
             for i in idx]
    print(f"{len(crops)} LFW crops at {args.size}x{args.size} (seed {args.seed}); pack size for {len(folder)} images")
    print("quality  bytes/img  pack MB  PSNR dB")
    for q in (int(v) for v in args.qualities.split(",")):
        enc = encode_jpeg(crops, quality=q)
        dec = decode_jpeg(enc)
        nb = float(np.mean([len(e) for e in enc]))
        psnr = np.mean([10 * np.log10(255.0**2 / np.mean((a.numpy().astype(np.float64) - b.numpy()) ** 2))
                        for a, b in zip(dec, crops)])
        print(f"{q:7d}  {nb:9.0f}  {nb * len(folder) / 1e6:7.1f}  {psnr:7.2f}")


if __name__ == "__main__":
    main()
