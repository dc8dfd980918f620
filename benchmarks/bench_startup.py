"""Whole commands, process start included: how long a user waits for ``iznet --help`` and for ``iznet label``
on one photo, next to the floors every Python face tool pays (the interpreter, ``import torch``,
``import dlib``) measured in the same run.

Each command runs ``--runs`` times in a fresh process, the commands interleaved round by round (the machine may
be shared); the median wall time is reported, with its ratio to ``import torch`` (the floor of any command
that runs a PyTorch network). ``iznet label --demo`` writes into a temporary folder.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_startup.py --out benchmarks/results/bench_startup.json

The goal set for the project (issue "a start-up under a second"): ``--help`` at most 0.5 s and the label of
one photo at most 1.5 s on this 2-core machine.

``iznet label`` runs on onnxruntime without importing torch once the models are in the ONNX cache (runtime
``auto``, the default); the first run exports them there. That first run is timed once, on its own, with an
empty cache (``first_run_s``); every other label command runs with the cache filled by the warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands(python: str, iznet: str, out: str) -> dict[str, list[str]]:
    """The commands timed, by name."""
    return {
        "python -c pass": [python, "-c", "pass"],
        "import torch": [python, "-c", "import torch"],
        "import dlib": [python, "-c", "import dlib"],
        "iznet --help": [iznet, "--help"],
        "iznet label --demo": [iznet, "label", "--demo", "--out", out],
        "iznet label --demo --runtime torch": [iznet, "label", "--demo", "--out", out, "--runtime", "torch"],
        "iznet label --demo --runtime onnx": [iznet, "label", "--demo", "--out", out, "--runtime", "onnx"],
        "iznet label --demo --detector-tta off": [iznet, "label", "--demo", "--out", out, "--detector-tta", "off"],
    }


def wall(cmd: list[str], env: dict[str, str]) -> float | None:
    """Seconds from start to exit of ``cmd``; None when it fails (its error is printed)."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t = time.perf_counter() - t0
    if r.returncode != 0:
        print(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="fresh processes per command")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args(argv)
    python = sys.executable
    iznet = str(Path(python).with_name("iznet"))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        env["IZNET_ONNX_DIR"] = str(Path(tmp) / "onnx")  # exported once in the warm-up run, then reused
        cmds = commands(python, iznet, str(Path(tmp) / "labelled"))
        wall(cmds["python -c pass"], env)  # the interpreter in the file cache
        first_run = wall(cmds["iznet label --demo"], env)  # an empty ONNX cache: the export included
        for cmd in cmds.values():  # warm-up: the file cache
            wall(cmd, env)
        times: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(args.runs):
            for name, cmd in cmds.items():
                t = wall(cmd, env)
                if t is not None:
                    times[name].append(t)
    torch_s = statistics.median(times["import torch"]) if times["import torch"] else None
    rows = {}
    print(f"{'command':42s} {'median s':>9s} {'/ import torch':>15s}")
    for name, ts in times.items():
        if not ts:
            rows[name] = {"failed": True}
            print(f"{name:42s} {'failed':>9s}")
            continue
        med = statistics.median(ts)
        ratio = med / torch_s if torch_s else None
        rows[name] = {"median_s": med, "runs_s": ts, "ratio_to_import_torch": ratio}
        print(f"{name:42s} {med:9.2f} {ratio:15.2f}" if ratio else f"{name:42s} {med:9.2f}")
    result = {"command": "python benchmarks/bench_startup.py" + "".join(f" {a}" for a in (argv or sys.argv[1:])),
              "date": time.strftime("%Y-%m-%d"), "runs": args.runs, "omp_num_threads": env["OMP_NUM_THREADS"],
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_average_start": load_start, "load_average_end": os.getloadavg()},
              "goals_s": {"iznet --help": 0.5, "iznet label --demo": 1.5}, "commands": rows,
              "first_run_s": {"iznet label --demo": first_run}}
    print(f"first run of iznet label --demo (exports the models into an empty ONNX cache): {first_run:.2f} s"
          if first_run is not None else "first run of iznet label --demo failed")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
