"""Forward throughput and peak memory of the embedding networks, against torchvision's ResNet-18.

Throughput is the best of ``--repeats`` timing windows (the median is in the JSON): on a shared machine
the best window is the least disturbed by other processes. ``cpu ms/img`` is the process's CPU time (all
threads) per image, which other processes disturb much less than wall time. Each model runs in eval mode under ``torch.inference_mode`` at its native input size, for each batch size
(``--train``: training steps instead, forward + backward in train mode).
The reference (``resnet18`` at 224 px, measured in the same run) gives machine-independent ratios.

Memory: on CUDA, ``torch.cuda.max_memory_allocated`` during one forward pass (``peak``: weights + activations;
``extra``: above what was allocated before the pass). On CPU, the process's peak resident set size during
one forward pass, measured after the timed runs (Linux ``VmHWM`` after resetting it through ``/proc/self/clear_refs``); ``extra`` is the
peak minus the resident size before the pass. (tracemalloc cannot see PyTorch's allocations.)

Usage:
    python benchmarks/bench_models.py                          # all models, batch 1 and 32, CPU
    python benchmarks/bench_models.py --models nn2,nn4* --batch 1,8 --device cuda --amp
"""

from __future__ import annotations

import argparse
import fnmatch
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REFERENCE = "resnet18"


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="*", help="comma-separated names or fnmatch patterns (default: all)")
    p.add_argument("--batch", default="1,32", help="comma-separated batch sizes (default: 1,32)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--seconds", type=float, default=3.0, help="target timed seconds per model and batch")
    p.add_argument("--max-iters", type=int, default=50, help="at most this many timed iterations per window")
    p.add_argument("--repeats", type=int, default=3, help="timing windows; the best is reported (and the median)")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first (1 for models > 3 GFLOPs/batch)")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA only)")
    p.add_argument("--train", action="store_true", help="time training steps (forward + backward, train mode)")
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format for model and input")
    p.add_argument("--kw", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword for create_model of every iznet model, e.g. --kw lrn=True (repeatable)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-reference", action="store_true", help=f"skip the {REFERENCE} reference")
    p.add_argument("--out", default=None, help="JSON output (default: benchmarks/results/bench_models_<device>.json)")
    return p.parse_args(argv)


def _select(spec: str) -> list[str]:
    from iznet.models import list_models

    names: list[str] = []
    for pat in (s.strip() for s in spec.split(",") if s.strip()):
        hits = [n for n in list_models() if fnmatch.fnmatchcase(n, pat)]
        if not hits:
            raise SystemExit(f"--models: {pat!r} matches no model; known: {', '.join(list_models())}")
        names += [h for h in hits if h not in names]
    return names


def _parse_kw(items: list[str]) -> dict:
    import ast

    kw = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise SystemExit(f"--kw expects KEY=VALUE, got {item!r}")
        try:
            kw[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            kw[key] = value  # a bare string
    return kw


def _build(name: str, device: torch.device, train: bool = False, channels_last: bool = False,
           kw: dict | None = None) -> tuple[torch.nn.Module, int]:
    if name == REFERENCE:
        import torchvision

        model, size = torchvision.models.resnet18(weights=None), 224
    else:
        from iznet.models import create_model

        kw = dict(kw or {})
        if name == "inception_v3":
            kw = {"init_weights": False}  # init does not change the speed; the NN options do not apply
        model = create_model(name, **kw)
        size = int(model.input_size)
    model = model.to(device).train(train)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, size


def _rss_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_cpu_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step(model, x, train: bool) -> None:
    """One forward pass, or with ``train`` a forward and backward pass (gradients are discarded)."""
    if not train:
        model(x)
        return
    model(x).square().sum().backward()
    model.zero_grad(set_to_none=True)


def _measure_memory(model, x, device, ctx, train: bool) -> dict:
    gc.collect()
    grad = torch.enable_grad if train else torch.inference_mode
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        with grad(), ctx():
            _step(model, x, train)
        _sync(device)
        peak = torch.cuda.max_memory_allocated(device)
        return {"peak_mb": peak / 2**20, "extra_mb": (peak - before) / 2**20, "memory_method": "cuda_max_allocated"}
    before = _rss_kb("VmRSS")
    if before is not None and _reset_cpu_peak():
        with grad(), ctx():
            _step(model, x, train)
        peak = _rss_kb("VmHWM")
        return {"peak_mb": peak / 1024, "extra_mb": max(0, peak - before) / 1024, "memory_method": "VmHWM"}
    import resource

    with grad(), ctx():
        _step(model, x, train)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # process-wide since start: an upper bound
    return {"peak_mb": peak / 1024, "extra_mb": None, "memory_method": "ru_maxrss"}


def _measure_speed(model, x, device, ctx, args, gflops_batch: float) -> dict:
    warmup = args.warmup if gflops_batch <= 3 else min(args.warmup, 1)
    grad = torch.enable_grad if args.train else torch.inference_mode
    with grad(), ctx():
        for _ in range(warmup):
            _step(model, x, args.train)
        _sync(device)
        t0 = time.perf_counter()
        _step(model, x, args.train)
        _sync(device)
        first = time.perf_counter() - t0
        # several timing windows; the best one is least disturbed by other processes (as timeit does)
        iters = max(1, min(args.max_iters, math.ceil(args.seconds / args.repeats / max(first, 1e-6))))
        windows, cpu_windows = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(iters):
                _step(model, x, args.train)
            _sync(device)
            windows.append((time.perf_counter() - t0) / iters)
            cpu_windows.append((time.process_time() - c0) / iters)
    b = x.shape[0]
    best, median = min(windows), statistics.median(windows)
    # process CPU seconds (all threads) per image: much less sensitive to other processes than wall time
    return {"iters": iters, "repeats": len(windows), "ms_per_batch": 1000 * best, "images_per_s": b / best,
            "images_per_s_median": b / median, "cpu_ms_per_image": 1000 * min(cpu_windows) / b}


def _machine(device: torch.device, threads: int) -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": threads, "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    if hasattr(os, "getloadavg"):
        info["loadavg_start"] = list(os.getloadavg())
    return info


def main(argv: list[str] | None = None) -> dict:
    args = _parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batch.split(",") if b.strip()]
    model_kw = _parse_kw(args.kw)
    names = ([] if args.no_reference else [REFERENCE]) + _select(args.models)
    from iznet.models import count_flops, count_params
    from iznet.utils.device import autocast

    def ctx():
        return autocast(device, enabled=args.amp)

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    machine = _machine(device, torch.get_num_threads())
    results = []
    print(f"{'model':<14} {'input':>5} {'batch':>5} {'GFLOPs':>7} {'img/s':>9} {'ms/batch':>9} {'cpu ms/img':>10} "
          f"{'peak MB':>8} {'extra MB':>8} {'vs ref':>7}", flush=True)
    ref_speed: dict[int, float] = {}
    for name in names:
        model, size = _build(name, device, args.train, args.channels_last, model_kw)
        with torch.device("meta"):
            meta_model, _ = _build(name, torch.device("meta"), kw=model_kw)
        gflops = count_flops(meta_model, size) / 1e9
        params = count_params(meta_model)
        del meta_model
        for b in batches:
            x = torch.randn(b, 3, size, size, device=device).clamp_(-1, 1)
            if args.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            # speed first: warm-up (and cuDNN autotuning) must not count as the forward pass's memory
            speed = _measure_speed(model, x, device, ctx, args, gflops * b)
            mem = _measure_memory(model, x, device, ctx, args.train)
            if name == REFERENCE:
                ref_speed[b] = speed["images_per_s"]
            ratio = speed["images_per_s"] / ref_speed[b] if b in ref_speed else None
            row = {"model": name, "input_size": size, "batch": b, "params": params, "gflops_per_image": gflops,
                   **speed, **mem, "ratio_vs_reference": ratio}
            results.append(row)
            extra = f"{row['extra_mb']:8.0f}" if row["extra_mb"] is not None else f"{'-':>8}"
            rtxt = f"{ratio:7.2f}" if ratio is not None else f"{'-':>7}"
            print(f"{name:<14} {size:>5} {b:>5} {gflops:>7.3f} {row['images_per_s']:>9.1f} "
                  f"{row['ms_per_batch']:>9.1f} {row['cpu_ms_per_image']:>10.1f} {row['peak_mb']:>8.0f} {extra} {rtxt}",
                  flush=True)
            del x
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if hasattr(os, "getloadavg"):
        machine["loadavg_end"] = list(os.getloadavg())
    report = {"command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
              "reference": f"torchvision {REFERENCE} at 224 px, same run", "amp": args.amp,
              "mode": "train step (forward + backward)" if args.train else "inference forward",
              "channels_last": args.channels_last, "model_kw": model_kw,
              "machine": machine, "results": results}
    out = Path(args.out) if args.out else Path(__file__).resolve().parent / "results" / f"bench_models_{device.type}.json"
    from iznet.utils.io import write_json

    write_json(out, report)
    print(f"wrote {out}", flush=True)
    return report


if __name__ == "__main__":
    main()
