#!/usr/bin/env bash
# One command: install, lint (ruff, pinned in the `test` extra; any finding fails the run), then run the whole
# test suite (CPU only, offline).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
PY=${PYTHON:-python3}
"$PY" -m ruff check .
exec "$PY" -m pytest -q -p no:cacheprovider "$@"
