#!/usr/bin/env bash
# Everything measured for a candidate bundled embedder, next to the current one and dlib (docs/results.md).
# Usage: RUN=runs/coll_v2_box_tri OLD=runs/bench/old_embedder.pt OLD_T=0.927 bash scripts/eval_candidate.sh STAGE
#   CROP=aligned for a candidate trained on aligned faces (its packs, an aligned LFW pack from
#   scripts/pack_lfw_aligned.py, the held-out folder unpacked from heldout_aligned112.pt).
#   calibrate | devcrops | openset_dev | spread_dev | cluster_dev | ship | lfw | ident | bench_heldout | bench_glint24
#   | openset_test | cluster | cfp
#   judge: the development numbers a candidate is judged by; measure: cluster_dev, ship and every test stage
# The shipped unknown-face rule is the row openset_rules.py marks "chosen" on development people: the most right
# names with at most 1% wrong names (3% until 2026-12-06; docs/training.md) and 10% of strangers named.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
RUN=${RUN:?run folder}
OUT=${OUT:-$RUN/eval}
DATA=${DATA:-../shared/data}
COLL=${COLL:-collection/v2}
CROP=${CROP:-box}
if [ "$CROP" = aligned ]; then LFWPACK=packs/lfw_aligned112.pt; CSCALE=1.0; else LFWPACK=packs/lfw112.pt; CSCALE=1.3; fi
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
case "$1" in
  calibrate)  # the development threshold at FAR 1% (people of the collection held out of training)
    $PY scripts/make_assets.py --embedder-run "$RUN" --pack packs/lfw112.pt --lfw "$DATA/lfw" --calibrate-only \
      | tee "$OUT/calibration.json" ;;
  devcrops)  # development people's faces cut by the bundled detector (the system's crops): rank-1, and a pack
    # UNTRAINED_BY=PACK: also the development people a model of that (older) collection did not train on
    # (UNTRAINED_BY_DEV=FILE: that model held out the people of FILE, its --dev-people)
    $PY scripts/dev_detector_crops.py --pad 0 --coll "$COLL" -e "$RUN/model.pt" ${OLD:+-e "$OLD"} --save-pack "$COLL" \
      ${UNTRAINED_BY:+--untrained-by "$UNTRAINED_BY"} ${UNTRAINED_BY_DEV:+--untrained-by-dev-people "$UNTRAINED_BY_DEV"} --json "$OUT/dev_detector_crops_pipeline.json" ;;
  openset_dev)  # choose the shipped rule on development people, faces cut as the system cuts them (stage devcrops),
    # the pipeline's prototypes, galleries of 12 and of 48 people (the limits must hold at both)
    T=$($PY -c "import json;print(json.load(open('$OUT/calibration.json'))['threshold'])")
    $PY scripts/openset_rules.py -e "$RUN/model.pt" --pack "$COLL/dev_detector_${CROP}112.pt" --part all \
      --threshold "$T" --far 0,0.01,0.03,0.05,0.075,0.1,0.125,0.15,0.2 --margin 0,0.025,0.05,0.075,0.1,0.125,0.15,0.2 \
      --group-size 12,48 --rounds 200 \
      --max-wrong 0.01 --json "$OUT/openset_dev.json" ;;  # 1%: development people showed a quarter of glint24's wrong names
  spread_dev)  # the spread rule (iznet.recognize.matcher.SpreadRule) chosen on the same development faces, beside
    # the rule openset_dev chose; when it is written, stage ship ships it in place of the margin
    T=$($PY -c "import json;print(json.load(open('$OUT/calibration.json'))['threshold'])")
    M=$($PY -c "import json;print((json.load(open('$OUT/openset_dev.json'))['chosen'] or {}).get('margin') or 0)")
    $PY scripts/choose_spread_rule.py -e "$RUN/model.pt" --pack "$COLL/dev_detector_${CROP}112.pt" --threshold "$T" \
      --margin "$M" --json "$OUT/spread_dev.json" ;;
  cluster_dev)  # iznet cluster's default cut, chosen on development people's faces as the system cuts them
    $PY scripts/choose_cluster_threshold.py -e "$RUN/model.pt" --pack "$COLL/dev_detector_${CROP}112.pt" \
      --calibration "$OUT/calibration.json" --json "$OUT/cluster_dev.json" ;;
  ship)  # the candidate becomes the bundled embedder, with the rule chosen on development people
    ARGS=$($PY -c "
import json; c = json.load(open('$OUT/openset_dev.json'))['chosen'] or {}
print(('--gallery-far %s ' % c['far'] if c.get('far') is not None else '') + ('--margin %s' % c['margin'] if c.get('margin') is not None else ''))")
    if [ -f "$OUT/spread_dev.json" ]; then  # in place of the margin and the gallery threshold (it was chosen alone)
      ARGS="--spread-rule $OUT/spread_dev.json"
    fi
    if [ -f "$OUT/cluster_dev.json" ]; then
      ARGS="$ARGS --cluster-threshold $($PY -c "import json;print(json.load(open('$OUT/cluster_dev.json'))['chosen']['threshold'])")"
    fi
    echo "make_assets $ARGS"
    $PY scripts/make_assets.py --embedder-run "$RUN" --pack packs/lfw112.pt --lfw "$DATA/lfw" $ARGS > "$OUT/make_assets.json" ;;
  openset_test)  # the shipped rule on people never used to choose anything
    T=$($PY -c "import json;print(json.load(open('$OUT/calibration.json'))['threshold'])")
    C=$($PY -c "
import json; c = json.load(open('$OUT/openset_dev.json'))['chosen'] or {}
print('--far %s --margin %s' % (c.get('far') or 0.05, c.get('margin') or 0.0))")
    $PY scripts/openset_rules.py -e "$RUN/model.pt" --pack "$COLL/heldout_${CROP}112.pt" --part all --threshold "$T" \
      $C --rounds 200 --json "$OUT/openset_heldout.json"
    $PY scripts/openset_rules.py -e "$RUN/model.pt" --pack packs/glint24_112.pt --part all --threshold "$T" \
      $C --rounds 200 --json "$OUT/openset_glint24.json"
    if [ -f "$OUT/spread_dev.json" ]; then
      M=$($PY -c "import json;print((json.load(open('$OUT/openset_dev.json'))['chosen'] or {}).get('margin') or 0)")
      for P in "$COLL/heldout_${CROP}112.pt:heldout:3,12,48" packs/glint24_112.pt:glint24:3,12; do  # 24 people
        IFS=: read -r PK NAME SIZES <<< "$P"
        $PY scripts/choose_spread_rule.py -e "$RUN/model.pt" --pack "$PK" --threshold "$T" --margin "$M" \
          --group-size "$SIZES" --rule "$OUT/spread_dev.json" --json "$OUT/spread_$NAME.json"
      done
    fi ;;
  cluster)  # dlib's descriptors are deterministic: its scores on the same folders come from an earlier run
    # the cut iznet cluster ships: stage cluster_dev's choice when it ran, else the unknown-face threshold
    if [ -f "$OUT/cluster_dev.json" ]; then T=$($PY -c "import json;print(json.load(open('$OUT/cluster_dev.json'))['chosen']['threshold'])")
    else T=$($PY -c "import json;print(json.load(open('$OUT/calibration.json'))['threshold'])"); fi
    $PY scripts/cluster_eval.py --no-dlib --data "$COLL/heldout_$CROP" --crop-scale "$CSCALE" -e "$RUN/model.pt" \
      --threshold "$T" --json "$OUT/cluster_heldout.json"
    $PY scripts/cluster_eval.py --no-dlib --data "$DATA/glint24/images" --crop-scale 1.0 -e "$RUN/model.pt" \
      --threshold "$T" --json "$OUT/cluster_glint24.json" ;;
  lfw)  # all 6,000 View 2 pairs, 10-fold thresholds; the candidate never saw an LFW image
    .venv/bin/iznet eval lfw -e "$RUN/model.pt" --pack "$LFWPACK" --data "$DATA" --json "$OUT/lfw_view2.json" ;;
  ident)  # closed-set rank-1 on the held-out identities, k = 5
    for e in "$RUN/model.pt" ${OLD:+"$OLD"}; do  # each model on the pack of its own crop convention
      C=$($PY -c "from iznet.utils.checkpoint import load_checkpoint as L;print(L('$e','embedder')['meta'].get('crop','box'))")
      P="$COLL/heldout_${C}112.pt"
      .venv/bin/iznet eval ident -e "$e" --pack "$P" -k 5 --json "$OUT/ident_$(basename "$(dirname "$e")")_$(basename "$e" .pt).json"
    done ;;
  bench_heldout|bench_glint24)
    if [ "$1" = bench_heldout ]; then D="$COLL/heldout_box"; MP=""; else D="$DATA/glint24"; MP="--max-probes 40"; fi
    $PY benchmarks/bench_group.py --data "$D" $MP --modes detect --latency-threads "" --cli-runs 0 \
      --embedder "new=src/iznet/assets/embedder.pt:shipped" ${OLD:+--embedder "old=$OLD:${OLD_T:?}"} --collection "$COLL" \
      --out "$OUT/$1.json" --md "$OUT/$1.md"
    if [ "$1" = bench_glint24 ]; then  # the people found in the training data apart (docs/data.md)
      $PY scripts/bench_breakdown.py "$OUT/$1.json" --review docs/results/overlap_v5/glint24_review.csv \
        --md "$OUT/bench_glint24_by_training.md"
    fi ;;
  cfp)
    $PY scripts/cfp_eval.py -e "$RUN/model.pt" --teacher "$DATA/../models/face_detection_yunet_2026may.onnx" \
      --json "$OUT/cfp.json" ;;
  judge)  # the development numbers a candidate is judged by (docs/training.md): centroid rank-1 on the
    # development crops, then calibrate and openset_dev; one line each at the end
    .venv/bin/iznet eval ident -e "$RUN/model.pt" --pack "$COLL/dev_detector_${CROP}112.pt" -k 5 \
      --json "$OUT/dev_ident.json" > "$OUT/dev_ident.log"
    bash "$0" calibrate > "$OUT/calibrate.log"
    bash "$0" openset_dev > "$OUT/openset_dev.log"
    $PY - "$OUT" <<'PYEOF'
import json, sys
out = sys.argv[1]
ident = json.load(open(f"{out}/dev_ident.json"))
cal = json.load(open(f"{out}/calibration.json"))
c = json.load(open(f"{out}/openset_dev.json"))["chosen"] or {}
print("centroid rank-1 (development crops):", json.dumps(ident["rank1"]))
print(f"TAR {cal['tar']:.1%} at FAR {cal['far']:.1%} (threshold {cal['threshold']:.4f})")
print("openset_dev chosen:", {k: c.get(k) for k in ("rule", "far", "margin", "right", "wrong", "strangers_named")})
PYEOF
    ;;
  measure)  # after a candidate passes: choose the cluster cut, ship it, then every test stage in two lanes
    bash "$0" cluster_dev > "$OUT/cluster_dev.log"
    bash "$0" ship > "$OUT/ship.log"
    (bash "$0" bench_heldout > "$OUT/bench_heldout.log" && bash "$0" lfw > "$OUT/lfw.log" && bash "$0" ident > "$OUT/ident.log") &
    A=$!
    (bash "$0" bench_glint24 > "$OUT/bench_glint24.log" && bash "$0" openset_test > "$OUT/openset_test.log" \
      && bash "$0" cluster > "$OUT/cluster.log" && bash "$0" cfp > "$OUT/cfp.log") &
    B=$!
    F=0; wait $A || F=1; wait $B || F=1
    if [ $F = 1 ]; then echo "a test stage failed: see $OUT/*.log" >&2; exit 1; fi
    echo "measured: $OUT" ;;
  *) echo "unknown stage $1" >&2; exit 2 ;;
esac
