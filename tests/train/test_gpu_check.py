"""scripts/gpu_check.sh (the CUDA-only paths: vLLM, 2-GPU ZeRO-3 and FSDP training) and install.sh's --gpu
option, checked as far as a machine without a GPU can: syntax, the clean no-CUDA exit, the jobs it would
run, and install.sh's refusals (which happen before anything is installed)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GPU_CHECK = ROOT / "scripts" / "gpu_check.sh"
INSTALL = ROOT / "scripts" / "install.sh"


def bash(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=300, **kw)


@pytest.mark.parametrize("script", [GPU_CHECK, INSTALL])
def test_the_scripts_parse(script):
    result = bash("-n", script)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow  # runs the whole script (a fresh interpreter importing torch); the `bash -n` check above stays fast
def test_without_cuda_gpu_check_says_so_and_exits_0():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is here: run scripts/gpu_check.sh itself")
    result = bash(GPU_CHECK)
    assert result.returncode == 0 and result.stdout.startswith("no CUDA device")


@pytest.mark.slow  # four real training-job preparations in subprocesses
def test_gpu_check_prepares_four_two_rank_jobs(tmp_path):
    pytest.importorskip("transformers")
    from selfdistill.spec import TrainSpec
    from selfdistill.train.finetune import accumulation_steps

    result = bash(GPU_CHECK, "--prepare-only", env=dict(os.environ, GPU_CHECK_DIR=str(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "prepare      PASS 4 training jobs" in result.stdout
    for engine in ("zero3", "fsdp"):
        for method in ("full", "lora"):
            job = json.loads((tmp_path / f"{engine}-{method}.json").read_text())
            cfg = TrainSpec.model_validate(job["train"])
            assert (cfg.method.value, cfg.device, cfg.precision) == (method, "cuda", "bfloat16")
            assert accumulation_steps(cfg, 2) * 2 * cfg.per_device_batch_size == cfg.batch_size
            assert Path(job["model"], "config.json").is_file() and Path(job["examples"]).is_file()
            assert (ROOT / "examples" / "accelerate" / f"{engine}.yaml").is_file()


def test_install_refuses_unknown_options_and_gpu_without_a_gpu():
    result = bash(INSTALL, "--bogus")
    assert result.returncode == 2 and "unknown option --bogus" in result.stderr
    if shutil.which("nvidia-smi"):
        pytest.skip("nvidia-smi is here")
    result = bash(INSTALL, "--gpu")
    assert result.returncode == 2 and "no nvidia-smi" in result.stderr

