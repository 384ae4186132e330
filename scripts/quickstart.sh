#!/usr/bin/env bash
# One command: install, then run the main job on the embedded default (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --default-model
PY=${PYTHON:-python3}
"$PY" -m selfdistill demo --out "${OUT:-runs/demo}"
