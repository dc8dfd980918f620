"""Time decoding a whole pack on the CPU and, when present, on the GPU; compare the two decodes.

    python scripts/time_pack_decode.py packs/lfw112.pt [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from iznet.data.pack import load_pack


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pack")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    p = load_pack(args.pack)
    print(f"{p}; {os.cpu_count()} CPUs, torch {torch.__version__}")
    t = time.perf_counter()
    cpu = p.decode()
    print(f"cpu: decoded {len(p)} images in {time.perf_counter() - t:.2f} s")
    if not torch.cuda.is_available():
        print("cuda: not available")
        return
    p.decode(range(256), device="cuda")  # warm-up (nvJPEG initialisation)
    for _ in range(args.repeats):
        torch.cuda.synchronize()
        t = time.perf_counter()
        gpu = p.decode(device="cuda")
        torch.cuda.synchronize()
        print(f"cuda ({torch.cuda.get_device_name()}): decoded {len(p)} images in {time.perf_counter() - t:.3f} s")
    diff = (gpu.cpu().float() - cpu.float()).abs()
    print(f"cuda vs cpu decode: mean abs difference {diff.mean():.2f}, max {diff.max():.0f} grey levels")


if __name__ == "__main__":
    main()
