#!/usr/bin/env bash
# One GPU session of the face detector work (run from the repo root on a CUDA machine, packs carried):
#   packs/det_train.pt  (iznet detector-pack --splits train,dev)   packs/det_test.pt  (--splits test)
# Writes runs/gpu/: toy.json, light/ (best.pt, metrics.jsonl, ...), bench_light.json, dark/metrics.jsonl.
# Usage: bash scripts/det_gpu_run.sh [LIGHT_MINUTES] [OUT_DIR]
set -u
MIN=${1:-6}
OUT_DIR=${2:-runs/gpu}
mkdir -p "$OUT_DIR"
export PYTHONPATH=${PYTHONPATH:-src} PYTHONUNBUFFERED=1
python3 -c "import torch,torchvision,cv2;print(torch.__version__,torchvision.__version__,cv2.__version__,torch.cuda.get_device_name())"
timeout 480 python3 -m iznet train-detector --toy --steps 5000 --batch-size 128 --width 128 --out "$OUT_DIR/toy" \
  > "$OUT_DIR/toy.log" 2>&1 &
python3 -m iznet train-detector --data packs/det_train.pt --backbone light --epochs 400 --batch-size 64 \
  --max-minutes "$MIN" --workers 12 --out "$OUT_DIR/light" 2>&1 | tr '\r' '\n' | grep -E "^epoch|^done|rror|Trace" | tail -8
python3 benchmarks/bench_detect.py --pack packs/det_test.pt --detector "$OUT_DIR/light/best.pt" --device cuda \
  --out "$OUT_DIR/bench_light.json" 2>/dev/null
python3 -m iznet train-detector --data packs/det_train.pt --backbone darknet53 --epochs 1 --batch-size 64 \
  --workers 12 --out "$OUT_DIR/dark" 2>&1 | tr '\r' '\n' | grep -E "^epoch|^done|rror" | tail -3
wait
tail -c 400 "$OUT_DIR/toy.log" | tr '\r' '\n' | tail -2
