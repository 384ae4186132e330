#!/usr/bin/env bash
# One command: install (with the embedded default model), then the main job on it:
#   selfdistill eval   — 16 samples per problem from Qwen2.5-Coder-0.5B-Instruct (llama.cpp, CPU) on a seeded
#                        subset of HumanEval (LIMIT problems, default 5: about ten minutes on 2 cores), scored
#                        in the sandbox, pass@k with bootstrap CIs;
#   selfdistill decide — the Precondition Verdict (deliverable A) on those metrics.
# The subset is stamped "not comparable" everywhere; LIMIT=164 runs all of HumanEval (hours on a CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --default-model
PY=${PYTHON:-python3}
RUN=${RUN:-runs/quickstart}
"$PY" -m selfdistill eval examples/quickstart.toml --limit "${LIMIT:-5}" --run-dir "$RUN"
"$PY" -m selfdistill decide examples/quickstart.toml --metrics "$RUN/base/metrics.json"
