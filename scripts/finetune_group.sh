#!/usr/bin/env bash
# Fine-tuning on a group, measured (issue: "your own people"): the first K pictures of each person are the
# user's photos (fine-tuned on, then enrolled), the rest are labelled end to end by the bundled embedder, the
# fine-tuned one and dlib in one benchmark run; the cost on people outside the group is rank-1 on the
# collection's held-out identities, before and after.
# Usage: DATA=../shared/data/glint24 K=20 OUT=runs/ft_glint24_k20 [EXTRA=--freeze-trunk] bash scripts/finetune_group.sh
# (EXTRA="--rehearse collection/v2/train_box112.pt" mixes the base's training people into every batch; the
# fine-tuned checkpoint's unknown-face threshold is chosen on the group's held-out faces, --calibrate-far.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
DATA=${DATA:?group folder (ROOT/<person>/<image>, or glint24/)}
K=${K:-20}
OUT=${OUT:?output folder}
STEPS=${STEPS:-300}
LR=${LR:-0.005}
PROBES=${PROBES:-40}
HELDOUT=${HELDOUT:-collection/v2/heldout_box112.pt}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT"
# 1. the user's photos: the first K of each person (the same split bench_group.py enrols)
$PY scripts/group_photos.py "$DATA" "$K" "$OUT/photos"
# 2. faces cut the way the bundled embedder expects them, 3. fine-tune with early stopping on held-out faces
CROP=$($PY -c "from iznet.recognize.embedder import load_embedder; from iznet.recognize.pipeline import default_embedder_spec; print(load_embedder(default_embedder_spec()).face_crop)")
[ -d "$OUT/faces" ] || .venv/bin/iznet extract-faces "$OUT/photos" "$OUT/faces" --size 112 --crop "$CROP" | tail -1
[ -f "$OUT/run/model.pt" ] || .venv/bin/iznet train --data "$OUT/faces" --init bundled --lr "$LR" --warmup 0 \
  --steps "$STEPS" --eval-every 25 --keep-best --p 8 --k 4 --augment photo ${EXTRA:-} --out "$OUT/run" 2>&1 \
  | grep -v "^train:" | tail -3
BEST="$OUT/run/best.pt"; [ -f "$BEST" ] || BEST="$OUT/run/model.pt"
# 4. end to end on the group's other pictures, 5. people outside the group
$PY benchmarks/bench_group.py --data "$DATA" --enroll "$K" --max-probes "$PROBES" --modes detect \
  --latency-threads "" --cli-runs 0 --embedder "base=src/iznet/assets/embedder.pt:shipped" \
  --embedder "finetuned=$BEST:shipped" --out "$OUT/bench.json" --md "$OUT/bench.md"
for e in src/iznet/assets/embedder.pt "$BEST"; do
  .venv/bin/iznet eval ident -e "$e" --pack "$HELDOUT" -k 5 --json "$OUT/ident_$(basename "$e" .pt).json" | tail -2
done
