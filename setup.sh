#!/usr/bin/env bash
# One-command set-up: creates .venv and installs iznet with everything it needs (torch included).
# Usage: ./setup.sh            # runtime + dev (tests), serve (web) and onnx (export, --runtime onnx) extras
#        IZNET_EXTRAS=dev,serve ./setup.sh
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
EXTRAS=${IZNET_EXTRAS:-dev,serve,onnx}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch/torchvision first, pinned to the versions this project is tested with.
.venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/python -m pip install -q -e ".[${EXTRAS}]"
# The web page's browser test drives Debian's headless Chromium. Installed when we may (root with apt-get,
# or IZNET_BROWSER=1); elsewhere that one test skips and says why. IZNET_BROWSER=0 never installs it.
if [ "${IZNET_BROWSER:-auto}" != 0 ] && ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] || [ "${IZNET_BROWSER:-auto}" = 1 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null) \
      || echo "note: could not install chromium; the browser test will be skipped"
  fi
fi
echo "iznet installed in .venv (activate with: source .venv/bin/activate)"
