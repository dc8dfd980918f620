#!/usr/bin/env bash
# The face detector's GPU session (run from the repo root on a CUDA machine, with the packs carried):
#   packs/det_train.pt  (iznet detector-pack --splits train,dev)   packs/det_test.pt  (--splits test)
# Trains the light detector for LIGHT_MINUTES (bf16), benchmarks it on the held-out sets, trains the
# toy rectangles model (Table 1 width, in parallel) and times one darknet53 epoch.
# Writes OUT_DIR/{light/,toy/,dark/,bench_light.json}; with COPY_TO, copies the small results there.
# Usage: bash scripts/det_gpu_run.sh [LIGHT_MINUTES=7] [OUT_DIR=runs/gpu] [COPY_TO]
set -u
MIN=${1:-7}
OUT_DIR=${2:-runs/gpu}
COPY_TO=${3:-}
mkdir -p "$OUT_DIR"
export PYTHONPATH=${PYTHONPATH:-src} PYTHONUNBUFFERED=1
python3 -c "import torch,torchvision;print(torch.__version__,torchvision.__version__,torch.cuda.get_device_name())"
timeout 600 python3 -m iznet train-detector --toy --steps 5000 --batch-size 128 --width 128 --out "$OUT_DIR/toy" \
  > "$OUT_DIR/toy.log" 2>&1 &
python3 -m iznet train-detector --data packs/det_train.pt --backbone light --epochs 400 --batch-size 64 \
  --max-minutes "$MIN" --workers 13 --out "$OUT_DIR/light" 2>&1 | tr '\r' '\n' | grep -E "^epoch|^done|rror|Trace" | tail -8
python3 benchmarks/bench_detect.py --pack packs/det_test.pt --detector "$OUT_DIR/light/best.pt" --device cuda \
  --out "$OUT_DIR/bench_light.json" 2>/dev/null
python3 -m iznet train-detector --data packs/det_train.pt --backbone darknet53 --epochs 1 --batch-size 64 \
  --workers 13 --out "$OUT_DIR/dark" 2>&1 | tr '\r' '\n' | grep -E "^epoch|^done|rror" | tail -3
wait
tail -c 400 "$OUT_DIR/toy.log" | tr '\r' '\n' | tail -1
if [ -n "$COPY_TO" ]; then
  cp "$OUT_DIR/light/best.pt" "$OUT_DIR/light/metrics.jsonl" "$OUT_DIR/bench_light.json" "$COPY_TO/"
  cp "$OUT_DIR/toy/toy.json" "$COPY_TO/" 2>/dev/null
  cp "$OUT_DIR/dark/metrics.jsonl" "$COPY_TO/dark_metrics.jsonl"
fi
