#!/usr/bin/env bash
# LFW View 2 (10 folds, "unrestricted, no outside data") on this CPU at the scale it allows. Each fold trains
# a fresh model on the people outside it, one thread per process, two processes for two cores:
#   FOLDS=0,1,2,3,4 bash scripts/cpu_lfw_view2.sh & FOLDS=5,6,7,8,9 bash scripts/cpu_lfw_view2.sh
#   .venv/bin/python scripts/lfw_view2.py --pack packs/lfw112.pt --data-root packs --out runs/view2_cpu --aggregate-only
# Env: PACK (packs/lfw112.pt), ROOT (packs), OUT (runs/view2_cpu), MODEL (nn4), SIZE (96), STEPS (128),
# WARMUP (20), BUDGET (seconds of training per fold, 0: none; lowers STEPS to fit), CKPT (checkpoint every
# CKPT steps, 0: none; a stopped fold resumes from it), EXTRA (more lfw_view2.py options), FOLDS (all ten).
# Defaults: the first CPU table (NN4 at 96 px, semi-hard, 32x4 batches, SGD 0.05, cosine, 16k samples).
# The best recipe at CPU scale (112 px, people drawn in proportion to their images, 4x the default weight
# decay, bf16 on a CPU with native bf16; 89.50% and 89.57% for two seed sets, 90.40% fused,
# docs/results_history.md), about 2,000 s a fold on one thread:
#   MODEL=nn4_small SIZE=112 STEPS=2400 WARMUP=100 CKPT=250 OUT=runs/view2_cpu_112n_s80_wd2e3 \
#     EXTRA="--people-weight images --seed 80 --cpu-bf16 --weight-decay 2e-3" FOLDS=0,1,2,3,4 bash scripts/cpu_lfw_view2.sh
set -euo pipefail
PACK=${PACK:-packs/lfw112.pt}
ROOT=${ROOT:-packs}
OUT=${OUT:-runs/view2_cpu}
MODEL=${MODEL:-nn4}
SIZE=${SIZE:-96}
STEPS=${STEPS:-128}
WARMUP=${WARMUP:-20}
BUDGET=${BUDGET:-0}
CKPT=${CKPT:-0}
EXTRA=${EXTRA:-}
FOLDS=${FOLDS:-0,1,2,3,4,5,6,7,8,9}
mkdir -p "$OUT"
# shellcheck disable=SC2086  # EXTRA holds several options
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} .venv/bin/python scripts/lfw_view2.py --pack "$PACK" --data-root "$ROOT" \
  --out "$OUT" --model "$MODEL" --input-size "$SIZE" --loss triplet --mining semi-hard --p 32 --k 4 --lr 0.05 \
  --steps "$STEPS" --warmup "$WARMUP" --time-budget "$BUDGET" --checkpoint-every "$CKPT" --folds "$FOLDS" \
  $EXTRA 2>&1 | tee -a "$OUT/log_${FOLDS//,/}.txt"
