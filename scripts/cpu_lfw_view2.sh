#!/usr/bin/env bash
# LFW View 2 (10 folds, "unrestricted, no outside data") on this CPU at the scale it allows: the best
# View 1 configuration (NN4 at 96 px, triplet loss, semi-hard mining, 32x4 batches, SGD 0.05, cosine),
# shortened to STEPS steps per fold. Each fold trains a fresh model on the people outside it.
#   FOLDS=0,1,2,3,4 bash scripts/cpu_lfw_view2.sh & FOLDS=5,6,7,8,9 bash scripts/cpu_lfw_view2.sh   # 2 cores
#   .venv/bin/python scripts/lfw_view2.py --pack packs/lfw112.pt --data-root packs --out runs/view2_cpu --aggregate-only
# Env: PACK (packs/lfw112.pt), ROOT (packs), OUT (runs/view2_cpu), STEPS (128), FOLDS (all ten),
# MODEL (nn4), WARMUP (20), CKPT (checkpoint every CKPT steps, 0: none; a stopped fold resumes from it).
# The shipped default's recipe (NN4-small, 3,971 steps of 128 images, about 67 min per fold on one thread):
#   MODEL=nn4_small STEPS=3971 WARMUP=100 CKPT=200 OUT=runs/view2_cpu_small FOLDS=0,2,4,6,8 bash scripts/cpu_lfw_view2.sh
set -euo pipefail
PACK=${PACK:-packs/lfw112.pt}
ROOT=${ROOT:-packs}
OUT=${OUT:-runs/view2_cpu}
STEPS=${STEPS:-128}
FOLDS=${FOLDS:-0,1,2,3,4,5,6,7,8,9}
MODEL=${MODEL:-nn4}
WARMUP=${WARMUP:-20}
CKPT=${CKPT:-0}
mkdir -p "$OUT"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} .venv/bin/python scripts/lfw_view2.py --pack "$PACK" --data-root "$ROOT" \
  --out "$OUT" --model "$MODEL" --input-size 96 --loss triplet --mining semi-hard --p 32 --k 4 --lr 0.05 \
  --steps "$STEPS" --warmup "$WARMUP" --checkpoint-every "$CKPT" --folds "$FOLDS" 2>&1 | tee -a "$OUT/log_${FOLDS//,/}.txt"
