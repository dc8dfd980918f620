#!/usr/bin/env bash
# Recipe pilot on the training collection at equal compute (the same steps of 128 images each):
# triplet (semi-hard), CosFace alone, and CosFace then triplet (half the steps each, the second from the
# first's weights). Development pairs: 5% of the collection's people, held out by every run alike (seed 0).
# Usage: STEPS=800 OUT=runs/pilot bash scripts/recipe_pilot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-800}
OUT=${OUT:-runs/pilot}
DATA=${DATA:-collection/v2/train_box112.pt}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
COMMON=(--data "$DATA" --model nn4_small --input-size 112 --people-weight images --weight-decay 2e-3 --p 32 --k 4
        --lr 0.05 --warmup 50 --eval-every 0 --checkpoint-every 200 --cpu-bf16 --device cpu --augment photo)
run() { [ -f "$1/model.pt" ] || .venv/bin/iznet train "${COMMON[@]}" --out "$@" 2>&1 | grep -v "^train:" | tail -3; }
HALF=$((STEPS / 2))
run "$OUT/triplet" --loss triplet --mining semi-hard --steps "$STEPS"
run "$OUT/cosface" --loss cosface --steps "$STEPS"
run "$OUT/cosface_half" --loss cosface --steps "$HALF"
run "$OUT/cosface_then_triplet" --loss triplet --mining semi-hard --steps "$HALF" --init "$OUT/cosface_half/model.pt"
for r in triplet cosface cosface_then_triplet; do
  .venv/bin/python -c "import json,sys; s=json.load(open('$OUT/$r/summary.json')); print('$r', s['samples'], 'samples, dev acc', round(s['dev']['best_acc'],4), 'AUC', round(s['dev']['auc'],4))"
done
