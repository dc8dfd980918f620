"""CPU speed of a network by memory layout and precision, against fp32 NCHW in the same run.

``--mode train``: one training step = forward, a loss on the output, backward and an SGD update (momentum
0.9) on a random batch, as ``iznet train`` runs it; the options compared are those of ``TrainConfig``
(``channels_last`` input batches, ``cpu_bf16`` autocast). ``--mode infer``: one forward pass in eval mode
without gradients, as ``iznet label`` embeds faces and detects them. Each configuration gets its own fresh
copy of the same initial weights; steps are timed after warm-up steps, best of ``--repeats`` rounds, and the
ratio is seconds per step over the reference's (fp32, NCHW).

    OMP_NUM_THREADS=1 python benchmarks/bench_cpu_layout.py --model nn4_small --size 112 --threads 1 \\
        --out benchmarks/results/bench_cpu_layout_train_nn4_small_112.json
    OMP_NUM_THREADS=1 python benchmarks/bench_cpu_layout.py --model det:light --size 416 --batch 16 \\
        --out benchmarks/results/bench_cpu_layout_train_det_light_416.json
    OMP_NUM_THREADS=1 python benchmarks/bench_cpu_layout.py --mode infer --model nn4_small --size 96 --batch 8 \\
        --steps 20 --out benchmarks/results/bench_cpu_layout_infer_nn4_small_96.json

``det:NAME`` is a face detector (``iznet.detect.create_detector``; the loss is then a scalar of its raw
grid output).

bf16 pays only on CPUs with native bf16 instructions (AVX512-BF16 or AMX); the JSON records whether
PyTorch's oneDNN reports them (``cpu.mkldnn_bf16``).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path

import torch

from iznet.utils.device import autocast, cpu_bf16_native

CONFIGS = [  # (name, channels_last, bf16); the first is the reference
    ("fp32_nchw", False, False),
    ("fp32_channels_last", True, False),
    ("bf16_nchw", False, True),
    ("bf16_channels_last", True, True),
]


def _step_time(model: torch.nn.Module, x: torch.Tensor, channels_last: bool, bf16: bool, train: bool,
               warmup: int, steps: int, repeats: int) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9) if train else None
    model.train(train)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def ctx():  # the trainer's own switch (TrainConfig.cpu_bf16)
        return autocast(torch.device("cpu"), cpu_bf16=bf16)

    def step():
        if not train:
            with torch.no_grad(), ctx():
                model(x)
            return
        with ctx():
            out = model(x)
        loss = out.float().pow(2).mean()  # any scalar of the output: the cost is the network's
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def _build(name: str, size: int | None) -> torch.nn.Module:
    if name.startswith("det:"):
        from iznet.detect.model import create_detector

        return create_detector(name[4:], **({"image_size": size} if size else {}))
    from iznet.models import create_model

    return create_model(name, **({"input_size": size} if size else {}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="nn4_small", help="an embedder (iznet models) or det:NAME, a detector")
    p.add_argument("--size", type=int, default=None, help="input side (models that take one)")
    p.add_argument("--mode", choices=("train", "infer"), default="train")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5, help="timed steps per round")
    p.add_argument("--repeats", type=int, default=1, help="rounds; the fastest counts")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    if args.batch < 1 or args.steps < 1 or args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        raise SystemExit("error: --batch, --steps, --repeats and --threads must be >= 1, --warmup >= 0")
    if args.mode == "train" and args.batch < 2:
        raise SystemExit("error: --mode train needs --batch >= 2 (batch norm)")

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from iznet.errors import ModelError

    try:
        base = _build(args.model, args.size)
    except ModelError as e:
        raise SystemExit(f"error: --model {args.model}: {e}") from None
    size = int(getattr(base, "input_size", None) or base.image_size)
    x = torch.randn(args.batch, 3, size, size).clamp_(-1, 1)
    rows = []
    for name, cl, bf16 in CONFIGS:
        sec = _step_time(copy.deepcopy(base), x, cl, bf16, args.mode == "train", args.warmup, args.steps,
                         args.repeats)
        rows.append({"config": name, "channels_last": cl, "bf16": bf16, "seconds_per_step": round(sec, 4),
                     "images_per_second": round(args.batch / sec, 1)})
        print(f"{name:20s} {sec:7.3f} s/step  {args.batch / sec:7.1f} img/s", flush=True)
    ref = rows[0]["seconds_per_step"]
    for r in rows:
        r["speedup_vs_fp32_nchw"] = round(ref / r["seconds_per_step"], 2)
    print("speed-up over fp32 NCHW: " + ", ".join(f"{r['config']} {r['speedup_vs_fp32_nchw']}x" for r in rows))
    result = {"mode": args.mode, "model": args.model, "input_size": size, "batch": args.batch,
              "threads": args.threads, "warmup": args.warmup, "steps": args.steps, "repeats": args.repeats,
              "reference": "fp32_nchw, same run",
              "torch": torch.__version__,
              "cpu": {"machine": platform.machine(), "processor": platform.processor(),
                      "capability": torch.backends.cpu.get_cpu_capability(), "mkldnn_bf16": cpu_bf16_native()},
              "rows": rows}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
