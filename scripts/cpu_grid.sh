#!/usr/bin/env bash
# The experiment grid of docs/experiments.md on this CPU: {NN1, NN2, InceptionV3} x {triplet, pair}
# plus contrastive loss (NN2), trained on glint24 (24 people; the first 80% of each person's images, the
# last 20% held out), every model at 96 px (CPU scale), the same budget of STEPS x 96 images each; then an
# analysis of each run on the held-out images and one comparison table.
#   iznet pack folder ../shared/data/glint24/images --size 112 --out packs/glint24_112.pt   # once
#   bash scripts/cpu_grid.sh            # runs/grid/<model>_<loss>/, runs/grid/analysis_*/, runs/grid/report*
# Env: PACK (packs/glint24_112.pt), STEPS (210), SIZE (96), INC_SIZE (80: 0.21 GFLOPS, below NN2 at 96),
#      DEVICE (cpu; cuda on a GPU, where larger STEPS and native sizes fit),
#      OUT (runs/grid), ITER (t-SNE iterations, 5000).
set -euo pipefail
PACK=${PACK:-packs/glint24_112.pt}
STEPS=${STEPS:-210}
SIZE=${SIZE:-96}
INC_SIZE=${INC_SIZE:-80}
OUT=${OUT:-runs/grid}
ITER=${ITER:-5000}
DEVICE=${DEVICE:-cpu}
IZNET=${IZNET:-.venv/bin/iznet}
mkdir -p "$OUT"
common=(--data "$PACK" --input-size "$SIZE" --steps "$STEPS" --warmup 20 --lr 0.05 --eval-every 50
        --checkpoint-every 50 --device "$DEVICE")
pk=(--p 16 --k 6)
train() {  # name, args...
  local name=$1; shift
  if [[ ! -f "$OUT/$name/summary.json" ]]; then
    local resume=()
    [[ -f "$OUT/$name/last.pt" ]] && resume=(--resume "$OUT/$name/last.pt")
    "$IZNET" train "${common[@]}" "$@" "${resume[@]}" --out "$OUT/$name" 2>&1 | tr '\r' '\n' \
      | grep -v '^train: ' | tee "$OUT/$name.log"
  fi
  if [[ ! -f "$OUT/$name/analysis/analysis.json" ]]; then
    "$IZNET" analyze "$OUT/$name" --data "$PACK" --part held-out --enroll 5 --iterations "$ITER" \
      --out "$OUT/$name/analysis" 2>&1 | tee "$OUT/$name.analysis.log"
  fi
}
# snapshots of the NN2 triplet run give the t-SNE sequence of the write-up's Figures 5-13
train nn2_triplet --model nn2 --loss triplet --mining semi-hard "${pk[@]}" --snapshot-at 0,2000,5000,10000,20160
train nn2_pair --model nn2 --loss pair --pair-batch 48
train nn2_contrastive --model nn2 --loss contrastive --margin 1.0 "${pk[@]}"
train nn1_triplet --model nn1 --loss triplet --mining semi-hard "${pk[@]}"
train nn1_pair --model nn1 --loss pair --pair-batch 48
train inception_v3_triplet --model inception_v3 --input-size "$INC_SIZE" --loss triplet --mining semi-hard "${pk[@]}"
train inception_v3_pair --model inception_v3 --input-size "$INC_SIZE" --loss pair --pair-batch 48
if [[ ! -d "$OUT/nn2_triplet/analysis_snapshots" ]]; then
  "$IZNET" analyze --snapshots "$OUT/nn2_triplet" --iterations "$ITER" --out "$OUT/nn2_triplet/analysis_snapshots"
fi
runs=("$OUT"/*_triplet "$OUT"/*_pair "$OUT"/*_contrastive)
"$IZNET" report "${runs[@]}" --out "$OUT/report.md"
"$IZNET" report "${runs[@]}" --out "$OUT/report.html"
