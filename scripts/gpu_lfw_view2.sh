#!/usr/bin/env bash
# LFW View 2 "unrestricted, no outside data" on one GPU: the ten fold models train at once (one process
# per fold; they share the GPU), each with a time budget; then the 10-fold table.
#   PACK=packs/lfw112.pt ROOT=packs BUDGET=420 MODEL=nn4_small SIZE=96 MINING=semi-hard bash scripts/gpu_lfw_view2.sh
# (the defaults: the recipe of the shipped embedder, 91.1% on held-out LFW people; MODEL=nn2 SIZE=112
# MINING=batch-hard was the first GPU try)
# ROOT must hold lfw/pairs.txt (the images come from the pack). Results: runs/view2_$MODEL.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
PACK=${PACK:-packs/lfw112.pt}; ROOT=${ROOT:-packs}; B=${BUDGET:-420}
MODEL=${MODEL:-nn4_small}; SIZE=${SIZE:-96}; MINING=${MINING:-semi-hard}; EXTRA=${EXTRA:-}
R=runs/view2_$MODEL; mkdir -p "$R"
for k in 0 1 2 3 4 5 6 7 8 9; do
  python3 scripts/lfw_view2.py --pack "$PACK" --data-root "$ROOT" --out "$R" --model "$MODEL" --input-size "$SIZE" \
    --mining "$MINING" --p 64 --k 4 --lr 0.05 --steps 20000 --warmup 200 --folds $k --time-budget "$B" $EXTRA \
    > "$R/fold$k.log" 2>&1 &
done
wait
grep -h "^fold" "$R"/fold*.log
python3 scripts/lfw_view2.py --pack "$PACK" --data-root "$ROOT" --out "$R" --aggregate-only
if [ -n "${OUT:-}" ]; then tar czf "$OUT/results.tgz" --exclude='last.pt' "$R"; fi
