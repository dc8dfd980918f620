#!/usr/bin/env bash
# LFW View 2 "unrestricted, no outside data" on one GPU: the ten fold models train at once (one process
# per fold; they share the GPU), each with a time budget that sets its step count (the cosine schedule
# follows it); then the 10-fold table.
#   PACK=packs/lfw112.pt ROOT=packs BUDGET=420 MODEL=nn4_small SIZE=96 MINING=semi-hard bash scripts/gpu_lfw_view2.sh
# Defaults: the recipe of the shipped embedder (NN4-small at 96 px, semi-hard, 32 x 4 batches, SGD 0.05,
# 100 warm-up steps; 91.1% on held-out LFW people), with up to STEPS steps cut to fit BUDGET seconds.
# MODEL=nn2 SIZE=112 MINING=batch-hard P=64 WARMUP=200 was the first GPU try.
# ROOT must hold lfw/pairs.txt (the images come from the pack). Results: $R (runs/view2_$MODEL).
# Another seed of the CPU recipe (2,400 steps of 32 x 4 at 112 px, people in proportion to their images), about
# 8 minutes for the ten folds on one H100 (estimated from the 9.7k samples/s of ten 96 px folds at once; the
# device allows 10 minutes a call, so FOLDS="0 1 2 3 4" and FOLDS="5 6 7 8 9" in two calls are safer, and
# lfw_view2.py --aggregate-only then runs here on the returned results.tgz):
#   STEPS=2400 BUDGET=0 SIZE=112 EXTRA="--people-weight images --seed 30" R=runs/view2_gpu_112n_s30 OUT=$OUT \
#     bash scripts/gpu_lfw_view2.sh
# The best CPU recipe adds 4x the weight decay (89.50% and 89.57% for two CPU seed sets, 90.40% fused; docs/results_history.md):
#   EXTRA="--people-weight images --seed 90 --weight-decay 2e-3" with the same other settings.
# With OUT set, the folds' small files (no checkpoints) are packed into $OUT/results.tgz, and the fold
# models (model.pt, about 7 MB each for NN4-small) two per file into $OUT/models_01.tgz ... models_89.tgz,
# so that each returned file stays under the device's 16 MB limit (6 files in all).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PACK=${PACK:-packs/lfw112.pt}; ROOT=${ROOT:-packs}; B=${BUDGET:-420}
MODEL=${MODEL:-nn4_small}; SIZE=${SIZE:-96}; MINING=${MINING:-semi-hard}; EXTRA=${EXTRA:-}
P=${P:-32}; K=${K:-4}; STEPS=${STEPS:-20000}; WARMUP=${WARMUP:-100}
R=${R:-runs/view2_$MODEL}; mkdir -p "$R"
FOLDS=${FOLDS:-0 1 2 3 4 5 6 7 8 9}; FOLDS=${FOLDS//,/ }
for k in $FOLDS; do
  python3 scripts/lfw_view2.py --pack "$PACK" --data-root "$ROOT" --out "$R" --model "$MODEL" --input-size "$SIZE" \
    --mining "$MINING" --p "$P" --k "$K" --lr 0.05 --steps "$STEPS" --warmup "$WARMUP" --folds $k \
    --time-budget "$B" $EXTRA > "$R/fold$k.log" 2>&1 &
done
wait
grep -h "^fold" "$R"/fold*.log
python3 scripts/lfw_view2.py --out "$R" --folds "${FOLDS// /,}" --aggregate-only
if [ -n "${OUT:-}" ]; then
  cp "$R/view2_distances.npz" "$OUT/" 2>/dev/null || true   # the run's result in 30 kB: docs/results/view2_runs/
  tar czf "$OUT/results.tgz" --exclude='last.pt' --exclude='model.pt' "$R"
  for pair in 01 23 45 67 89; do
    a=${pair:0:1}; b=${pair:1:1}
    tar czf "$OUT/models_$pair.tgz" "$R/fold$a/model.pt" "$R/fold$b/model.pt" 2>/dev/null || true
  done
fi
