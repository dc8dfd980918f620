#!/usr/bin/env bash
# One-command set-up: creates .venv and installs iznet with everything it needs (torch included).
# Usage: ./setup.sh            # runtime + dev (tests) extras
#        IZNET_EXTRAS=dev,serve ./setup.sh
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
EXTRAS=${IZNET_EXTRAS:-dev,serve}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch/torchvision first, pinned to the versions this project is tested with.
.venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/python -m pip install -q -e ".[${EXTRAS}]"
echo "iznet installed in .venv (activate with: source .venv/bin/activate)"
