#!/usr/bin/env bash
# The paths only a CUDA machine can run, each reported PASS / FAIL / SKIP on its own line:
#   vllm           the vLLM backend (selfdistill.generate.vllm_backend) on a small local model: chat
#                  samples come back, and the same seeds give the same samples twice
#   zero3-full     2-GPU DeepSpeed ZeRO-3 training job (examples/accelerate/zero3.yaml) on a tiny model,
#   zero3-lora     full fine-tuning and LoRA: train.json says cuda x 2, merged/ loads
#   fsdp-full      the same through FSDP 2 (examples/accelerate/fsdp.yaml)
#   fsdp-lora
# Usage (from the repository, after `bash scripts/install.sh --gpu`):
#   bash scripts/gpu_check.sh [MODEL_DIR]
#   bash scripts/gpu_check.sh --prepare-only   build the tiny model and the four training jobs, no GPU needed
# MODEL_DIR: a transformers model directory for the vLLM path; default: the embedded default model
# (selfdistill[default-model]) dequantized from its GGUF into a temporary transformers directory.
# Without a CUDA device it prints "no CUDA device" and exits 0 (nothing to check). Exit 1 when any path
# fails; the logs stay in $GPU_CHECK_DIR (default: a new temporary directory).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
MODEL_DIR=${1:-}
PREPARE_ONLY=0
if [[ "$MODEL_DIR" == "--prepare-only" ]]; then PREPARE_ONLY=1 MODEL_DIR=""; fi

if [[ "$PREPARE_ONLY" == 0 ]] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "no CUDA device: nothing to check here (scripts/gpu_check.sh needs a CUDA machine)"
  exit 0
fi
GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
WORK=${GPU_CHECK_DIR:-$(mktemp -d -t selfdistill-gpu-check.XXXXXX)}
mkdir -p "$WORK"
echo "gpu_check: $GPUS CUDA device(s); logs in $WORK"
FAILED=0

report() {  # name status detail
  printf '%-12s %-4s %s\n' "$1" "$2" "$3"
  if [[ "$2" == "FAIL" ]]; then FAILED=1; fi
}

# --- vLLM backend ------------------------------------------------------------------------------
check_vllm() {
  if ! "$PY" -c "import vllm" 2>/dev/null; then
    report vllm FAIL "vllm is not installed (bash scripts/install.sh --gpu)"
    return
  fi
  local model=$MODEL_DIR
  if [[ -z "$model" ]]; then
    model="$WORK/default-model-hf"
    if ! "$PY" - "$model" >"$WORK/vllm-model.log" 2>&1 <<'EOF'
import sys
from pathlib import Path
from selfdistill.generate.default_model import resolve_model
from selfdistill.train.finetune import load_model_and_tokenizer
import torch
net, tok = load_model_and_tokenizer(resolve_model("embedded-default", None), torch.bfloat16)
net.save_pretrained(sys.argv[1])
tok.save_pretrained(sys.argv[1])
EOF
    then
      report vllm FAIL "no MODEL_DIR given and the embedded default could not be converted ($WORK/vllm-model.log)"
      return
    fi
  fi
  if "$PY" - "$model" >"$WORK/vllm.log" 2>&1 <<'EOF'
import sys
from selfdistill.generate.backends import load_backend
from selfdistill.generate.base import GenRequest
from selfdistill.generate.params import SamplingParams

backend = load_backend("vllm", sys.argv[1], chat=True,
                       options={"gpu_memory_utilization": 0.5, "max_model_len": 4096})
ask = ({"role": "user", "content": "Write a Python function add(a, b) that returns their sum."},)
requests = [GenRequest("check/0", i, ask, 1000 + i) for i in range(8)]
params = SamplingParams(temperature=0.7, top_p=0.95, top_k=20, max_new_tokens=256)
first = {r.sample_idx: r.text for r in backend.generate(requests, params)}
second = {r.sample_idx: r.text for r in backend.generate(requests, params)}
assert len(first) == 8 and all(first.values()), first
assert first == second, "the same seeds gave other samples"
assert len(set(first.values())) > 1, "8 seeds gave one sample"
print(backend.describe())
print(first[0])
backend.close()
EOF
  then report vllm PASS "8 chat samples, seed-reproducible ($model)"
  else report vllm FAIL "see $WORK/vllm.log"
  fi
}

# --- 2-GPU training through accelerate -----------------------------------------------------------
prepare_jobs() {
  "$PY" - "$WORK" >"$WORK/prepare.log" 2>&1 <<'EOF'
import json, sys
from pathlib import Path
from selfdistill.spec import TrainSpec
from selfdistill.train.finetune import job_record
from tests.generate.tiny_models import write_tiny_hf

work = Path(sys.argv[1])
model = write_tiny_hf(work / "tiny-model")
examples = work / "examples.jsonl"
with examples.open("w") as f:
    for i in range(16):
        f.write(json.dumps({"prompt": [{"role": "user", "content": f"Write f{i}"}],
                            "completion": [{"role": "assistant", "content": f"def f{i}(x):\n    return x + {i}\n"}]}) + "\n")
for engine in ("zero3", "fsdp"):
    for method in ("full", "lora"):
        cfg = TrainSpec(method=method, lora_r=4, lora_alpha=8, batch_size=8, per_device_batch_size=2, epochs=2,
                        save_steps=1, device="cuda", precision="bfloat16", target_modules=["q_proj", "v_proj"])
        job = job_record(str(model), examples, cfg, work / f"{engine}-{method}", chat=True)
        (work / f"{engine}-{method}.json").write_text(json.dumps(job))
EOF
}

check_training() {  # engine method
  local name="$1-$2" config="examples/accelerate/$1.yaml"
  if [[ "$GPUS" -lt 2 ]]; then report "$name" SKIP "needs 2 GPUs, found $GPUS"; return; fi
  if [[ "$1" == "zero3" ]] && ! "$PY" -c "import deepspeed" 2>/dev/null; then
    report "$name" FAIL "deepspeed is not installed (bash scripts/install.sh --gpu)"
    return
  fi
  "$PY" -m accelerate.commands.launch --config_file "$config" --num_processes 2 \
    -m selfdistill.train.finetune "$WORK/$name.json" >"$WORK/$name.log" 2>&1
  local rc=$?
  if [[ $rc -ne 0 ]]; then report "$name" FAIL "exit $rc, see $WORK/$name.log"; return; fi
  if "$PY" - "$WORK/$name" >>"$WORK/$name.log" 2>&1 <<'EOF'
import json, math, sys
from pathlib import Path
from transformers import AutoModelForCausalLM
out = Path(sys.argv[1])
record = json.loads((out / "train.json").read_text())
assert record["device"] == "cuda" and record["device_count"] == 2, record
assert record["finite"] and all(math.isfinite(x) for x in record["loss_curve"]), record["loss_curve"]
assert record["effective_batch"] == 8, record["effective_batch"]
AutoModelForCausalLM.from_pretrained(out / "merged")
print("loss", record["loss_first"], "->", record["loss_last"], record["precision"])
EOF
  then report "$name" PASS "$(tail -1 "$WORK/$name.log")"
  else report "$name" FAIL "train.json or merged/ not as expected, see $WORK/$name.log"
  fi
}

if [[ "$PREPARE_ONLY" == 1 ]]; then
  if prepare_jobs; then report prepare PASS "$(ls "$WORK"/*.json | wc -l) training jobs in $WORK"; else
    report prepare FAIL "see $WORK/prepare.log"; fi
  exit $FAILED
fi
check_vllm
if prepare_jobs; then
  for engine in zero3 fsdp; do
    for method in full lora; do check_training "$engine" "$method"; done
  done
else
  report training FAIL "could not build the tiny model and jobs ($WORK/prepare.log)"
fi
exit $FAILED
