#!/usr/bin/env bash
# LFW View 1 (train on people outside pairsDevTest, score pairsDevTest) for NN4 at 96 px on the CPU:
# triplet/semi-hard, triplet/batch-hard and DeepFace pair classification, the same budget each
# (STEPS steps of 128 images, SGD momentum 0.9, lr 0.05, cosine, 50 warm-up steps).
#   bash scripts/cpu_view1.sh            # runs/v1_nn4_{semihard,batchhard,pair}
# Env: PACK (packs/lfw112.pt), ROOT (packs: folder holding lfw/pairs*.txt), STEPS (600), OUT (runs).
set -euo pipefail
PACK=${PACK:-packs/lfw112.pt}
ROOT=${ROOT:-packs}
STEPS=${STEPS:-600}
OUT=${OUT:-runs}
IZNET=${IZNET:-.venv/bin/iznet}
common=(--data lfw:view1 --pack "$PACK" --data-root "$ROOT" --model nn4 --steps "$STEPS" --warmup 50
        --lr 0.05 --eval-every 0 --checkpoint-every 100 --device cpu)
run() {  # name, extra args...
  local name=$1; shift
  if [[ -f "$OUT/$name/summary.json" ]]; then echo "$name: done already"; return; fi
  local resume=()
  [[ -f "$OUT/$name/last.pt" ]] && resume=(--resume "$OUT/$name/last.pt")
  "$IZNET" train "${common[@]}" "$@" "${resume[@]}" --out "$OUT/$name" 2>&1 | tr '\r' '\n' | grep -v '^train: ' | tee "$OUT/$name.log"
}
run v1_nn4_semihard --loss triplet --mining semi-hard --p 32 --k 4
run v1_nn4_batchhard --loss triplet --mining batch-hard --p 32 --k 4
run v1_nn4_pair --loss pair --pair-batch 64
