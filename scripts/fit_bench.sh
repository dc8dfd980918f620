#!/usr/bin/env bash
# `iznet fit` measured with the bundled embedder as its base (docs/training.md, "iznet fit, measured"): on
# glint24 with its first 20 pictures a person as the user's photos, and on 24 held-out collection people with
# 10; then the group's other pictures labelled end to end by the bundled embedder (its shipped rule), what the
# fit kept (its model and rule) and dlib, in one benchmark run each.
# Usage: TAG=v9 [FIT_GROUPS=glint24_k20] bash scripts/fit_bench.sh   -> runs/fit_${TAG}_{glint24_k20,heldout_k10}/{fit,bench}.json
# Needs collection/v2/heldout_box (scripts/unpack_pack.py, docs/data.md); a finished fit is not run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
TAG=${TAG:?a name for this base, e.g. v9}
DATA=${DATA:-../shared/data}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for g in ${FIT_GROUPS:-glint24_k20 heldout_k10}; do
  case $g in
    glint24_k20) set -- "$g" "$DATA/glint24" 20 ;;
    heldout_k10) set -- "$g" runs/heldout_group24 10
      [ -d runs/heldout_group24 ] || $PY scripts/pick_group.py --root collection/v2/heldout_box --people 24 \
        --min-images 18 --out runs/heldout_group24 ;;
    *) echo "unknown group $g (glint24_k20, heldout_k10)" >&2; exit 2 ;;
  esac
  O=runs/fit_${TAG}_$1
  mkdir -p "$O"
  $PY scripts/group_photos.py "$2" "$3" "$O/photos"
  [ -f "$O/fit/fit.json" ] || .venv/bin/iznet fit "$O/photos" --out "$O/fit" > "$O/fit.log" 2>&1 \
    || { echo "fit $1 failed: $O/fit.log"; exit 1; }
  B=$($PY -c "import json,math;d=json.load(open('$O/fit/fit.json'));t=d['threshold'];print(d['embedder']+':'+('shipped' if t is None or (isinstance(t,float) and math.isnan(t)) else str(t)))")
  $PY benchmarks/bench_group.py --data "$2" --enroll "$3" --max-probes 40 --modes detect --latency-threads "" \
    --cli-runs 0 --embedder base=src/iznet/assets/embedder.pt:shipped --embedder "fit=$B" --out "$O/bench.json" \
    --md "$O/bench.md" >> "$O/fit.log" 2>&1
  echo "$1: $O/bench.md"
done
