#!/usr/bin/env bash
# Everything the training and evaluation commands read that is not committed, rebuilt on a new machine with the
# commands of docs/data.md, docs/detection.md and scripts/eval_candidate.sh (each step skipped when its output
# exists): the collections' identity folders and packs (v2 to v7), the development people and their detector
# crops, the held-out folders, and the LFW, glint24 and detector packs.
# Usage: bash scripts/rebuild_data.sh [collections|eval|detector|all]   (default: all; about an hour here)
# Needs the sources' git snapshots under /work/.mirror (brought with the search tool's fetch: the repositories
# are listed in scripts/collection_sources.py; the script names any that are missing).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
IZ=.venv/bin/iznet
DATA=${DATA:-../shared/data}
YUNET=${YUNET:-../shared/models/face_detection_yunet_2026may.onnx}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
WHAT=${1:-all}
V2="--source fiw=collection/raw/fiw --source fiw_kaggle=collection/raw/fiw_kaggle --source pins=collection/raw/pins:named
  --source lag=collection/raw/lag:named --source celeba=collection/raw/celeba --exclude-lfw
  --exclude collection/raw/exclude_cfp.txt"
V3_EXTRA="--source casia5=collection/raw/casia5 --source asianfaces=collection/raw/asianfaces:named
  --source pakistani1=collection/raw/pakistani1:named --source pakistani2=collection/raw/pakistani2:named
  --source hinatazaka=collection/raw/hinatazaka:named --source nogizaka=collection/raw/nogizaka:named
  --source bollywood=collection/raw/bollywood:named --exclude collection/raw/exclude_glint24.txt"
V4_REST="--source bollywood100=collection/raw/bollywood100:named --source fgnet=collection/raw/fgnet
  --source pakistani_celebs=collection/raw/pakistani_celebs:named"
V4_EXTRA="--source celeba10k=collection/raw/celeba10k $V4_REST"
# v5: celeba10k's folder with celeba30k's pictures linked in (the same people keep their identities)
V5_EXTRA="--source celeba10k=collection/raw/celeba_v5 $V4_REST"
# v7: v6 and five small sources of people the collection lacks (Turkish, Indian, Indonesian, Japanese)
V7_EXTRA="--source turkish=collection/raw/turkish:named --source indian_students=collection/raw/indian_students
  --source indonesian1=collection/raw/indonesian1 --source indonesian2=collection/raw/indonesian2
  --source nogizaka2=collection/raw/nogizaka2:named"

collections() {
  $PY scripts/collection_sources.py --out collection/raw --cfp-names --skip-written  # names any snapshot to fetch
  (echo "# glint24 people"; ls "$DATA/glint24/images" | tr _ ' ') > collection/raw/exclude_glint24.txt
  # shellcheck disable=SC2086
  [ -f collection/v2/collection.json ] || $IZ data build $V2 --out collection/v2
  if [ ! -f collection/v3/collection.json ]; then
    mkdir -p collection/v3/landmarks && cp -n collection/v2/landmarks/*.npz collection/v3/landmarks/  # the teacher's cache
    # shellcheck disable=SC2086
    $IZ data build $V2 $V3_EXTRA --out collection/v3
  fi
  if [ ! -f collection/v4/collection.json ]; then
    mkdir -p collection/v4/landmarks && cp -n collection/v3/landmarks/*.npz collection/v4/landmarks/
    # shellcheck disable=SC2086
    $IZ data build $V2 $V3_EXTRA $V4_EXTRA --out collection/v4
  fi
  [ -f collection/raw/celeba_v5/SOURCE.json ] || $PY scripts/collection_sources.py --out collection/raw \
    --merge celeba_v5=celeba10k,celeba30k
  if [ ! -f collection/v5/collection.json ]; then
    mkdir -p collection/v5/landmarks && cp -n collection/v4/landmarks/*.npz collection/v5/landmarks/
    # shellcheck disable=SC2086
    $IZ data build $V2 $V3_EXTRA $V5_EXTRA --out collection/v5
  fi
  # v6: v5 without the training identities found by face to be evaluation people, nor misspelt excluded names
  if [ ! -f collection/v6/collection.json ]; then
    mkdir -p collection/v6/landmarks && cp -n collection/v5/landmarks/*.npz collection/v6/landmarks/
    # shellcheck disable=SC2086
    $IZ data build $V2 $V3_EXTRA $V5_EXTRA --exclude-keys scripts/exclude_found_by_face.txt --exclude-one-edit \
      --out collection/v6
  fi
  if [ ! -f collection/v7/collection.json ]; then
    mkdir -p collection/v7/landmarks && cp -n collection/v6/landmarks/*.npz collection/v7/landmarks/
    # shellcheck disable=SC2086
    $IZ data build $V2 $V3_EXTRA $V5_EXTRA $V7_EXTRA --exclude-keys scripts/exclude_found_by_face.txt \
      --exclude-one-edit --out collection/v7
  fi
}

evaluation() {
  [ -f collection/v2/dev_people.txt ] || $PY scripts/dev_people.py collection/v2/train_aligned112.pt \
    --out collection/v2/dev_people.txt
  for c in box aligned; do
    [ -d collection/v2/heldout_$c ] || $PY scripts/unpack_pack.py collection/v2/heldout_${c}112.pt \
      collection/v2/heldout_$c --min-images 6
  done
  mkdir -p packs
  [ -f packs/glint24_112.pt ] || $IZ pack folder "$DATA/glint24/images" --size 112 --out packs/glint24_112.pt --crop none
  [ -f packs/lfw112.pt ] || $IZ pack lfw --size 112 --out packs/lfw112.pt
  [ -f packs/lfw_aligned112.pt ] || $PY scripts/pack_lfw_aligned.py --lfw "$DATA/lfw" --yunet "$YUNET" \
    --out packs/lfw_aligned112.pt
  # the development people's faces as the bundled detector cuts them (stage devcrops, with the bundled embedder)
  if [ ! -f collection/v2/dev_detector_aligned112.pt ]; then
    mkdir -p runs/bundled && cp src/iznet/assets/embedder.pt runs/bundled/model.pt
    RUN=runs/bundled CROP=aligned COLL=collection/v2 bash scripts/eval_candidate.sh devcrops
  fi
}

detector() {
  mkdir -p packs
  [ -f packs/faces1750_yunet.csv ] || $IZ label-boxes --teacher "yunet:$YUNET" "$DATA/faces-1750/images" \
    --out packs/faces1750_yunet.csv
  for s in "train,dev det_train" "test det_test"; do
    set -- $s
    [ -f packs/$2.pt ] || $IZ detector-pack --out packs/$2.pt --faces "$DATA/faces-1750" \
      --teacher-boxes packs/faces1750_yunet.csv --lfw "$DATA/lfw" --splits "$1"
  done
  # the landmark branch's labels (docs/detection.md, Landmarks); needs collection/v2 and its raw folders
  [ -f packs/landmarks_v1.npz ] || $PY scripts/landmark_labels.py --yunet "$YUNET" --faces "$DATA/faces-1750" \
    --collection collection/v2 --raw collection/raw --out packs/landmarks_v1.npz
}

case $WHAT in
  collections) collections ;;
  eval) evaluation ;;
  detector) detector ;;
  all) collections; evaluation; detector ;;
  *) echo "unknown part $WHAT (collections, eval, detector, all)" >&2; exit 2 ;;
esac
echo "rebuilt: $WHAT"
