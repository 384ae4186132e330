#!/usr/bin/env bash
# One command: install, then run the whole test suite (CPU only, offline).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
PY=${PYTHON:-python3}
exec "$PY" -m pytest -q -p no:cacheprovider "$@"
