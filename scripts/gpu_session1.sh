#!/usr/bin/env bash
# One GPU lease, all recognition runs at once (they share the GPU; each has its own time budget):
#  - LFW View 2, unrestricted: NN2 at 112, batch-hard triplets, one model per fold (10 processes);
#  - LFW View 1 for NN4 with semi-hard triplets, batch-hard triplets and pair classification;
#  - the default embedder (NN4-small at 96) on LFW without the demo people.
# Needs packs/lfw112.pt and packs/lfw/pairs*.txt. Results: runs/gpu1 (and $OUT/results.tgz when set).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
R=runs/gpu1; mkdir -p "$R"
B=${BUDGET:-400}
PACK=${PACK:-packs/lfw112.pt}; ROOT=${ROOT:-packs}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$R/gpu.txt" 2>&1
for k in 0 1 2 3 4 5 6 7 8 9; do
  python3 scripts/lfw_view2.py --pack $PACK --data-root $ROOT --out $R/view2 --model nn2 --input-size 112 \
    --mining batch-hard --p 64 --k 4 --lr 0.05 --steps 6000 --warmup 200 --folds $k --time-budget $B \
    > $R/fold$k.log 2>&1 &
done
T="python3 -m iznet.cli.main train --pack $PACK --data-root $ROOT --steps 6000 --warmup 200 --eval-every 0 --checkpoint-every 0 --time-budget $B"
$T --data lfw:view1 --model nn4 --loss triplet --mining semi-hard --out $R/view1_nn4_semihard > $R/v1_semihard.log 2>&1 &
$T --data lfw:view1 --model nn4 --loss triplet --mining batch-hard --out $R/view1_nn4_batchhard > $R/v1_batchhard.log 2>&1 &
$T --data lfw:view1 --model nn4 --loss pair --optimizer adamw --lr 0.001 --pair-batch 128 --out $R/view1_nn4_pair > $R/v1_pair.log 2>&1 &
DEMO=George_W_Bush,Colin_Powell,Tony_Blair,Donald_Rumsfeld,Gerhard_Schroeder
$T --data lfw:all-except=$DEMO --model nn4_small --mining batch-hard --p 64 --k 4 --out $R/default_nn4_small > $R/default.log 2>&1 &
wait
python3 scripts/lfw_view2.py --pack $PACK --data-root $ROOT --out $R/view2 --aggregate-only > $R/view2_aggregate.txt 2>&1
grep -h "fold\|done" $R/*.log | grep -v "^\s*$" | tail -40
cat $R/view2_aggregate.txt | head -30
if [ -n "${OUT:-}" ]; then
  tar czf "$OUT/results.tgz" --exclude='last.pt' --exclude='fold*/model.pt' --exclude='view1_*/model.pt' "$R"
  ls -la "$OUT"
fi
