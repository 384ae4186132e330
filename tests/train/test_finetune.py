"""Fine-tuning on a tiny Qwen2 model built here: LoRA and full, completion-only loss, resume, the job CLI."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

from selfdistill.spec import TrainSpec  # noqa: E402
from selfdistill.train.finetune import build_trainer, job_record, run_job  # noqa: E402
from tests.generate.tiny_models import write_tiny_hf  # noqa: E402
from tests.train.examples import write_examples  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_hf(tmp_path_factory.mktemp("tiny") / "model")


def cfg(**kw) -> TrainSpec:
    return TrainSpec(**({"lora_r": 4, "lora_alpha": 8, "batch_size": 4, "per_device_batch_size": 2,
                         "save_steps": 1, "learning_rate": 1e-3} | kw))


def test_the_loss_is_on_the_completion_only(tiny, tmp_path):
    job = job_record(str(tiny), write_examples(tmp_path / "ex.jsonl"), cfg(), tmp_path / "out", chat=True)
    from selfdistill.train.finetune import load_examples

    trainer, _, tokenizer = build_trainer(job, load_examples(Path(job["examples"])))
    row = trainer.train_dataset[0]
    mask = [label != -100 for label in row["labels"]]
    assert 0 < sum(mask) < len(mask)  # the prompt is masked out (-100), the completion is not
    completion = tokenizer.decode([t for t, m in zip(row["input_ids"], mask, strict=True) if m])
    assert "def f0(x):" in completion and "Write f0" not in completion
    assert trainer.args.completion_only_loss is True


@pytest.mark.slow  # real TRL training, twice
@pytest.mark.parametrize("method", ["lora", "full"])
def test_training_writes_a_loadable_model_and_resumes_from_its_checkpoint(tiny, tmp_path, method):
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path / "out"
    job = job_record(str(tiny), write_examples(tmp_path / "ex.jsonl"), cfg(method=method), out, chat=True)
    record = run_job(job)
    assert record["optimizer_steps"] == 2 and record["n_examples"] == 8 and record["finite"]
    assert len(record["loss_curve"]) == 2 and record["device"] == "cpu"
    assert ("adapter" in record) == (method == "lora")
    base = AutoModelForCausalLM.from_pretrained(tiny)
    tuned = AutoModelForCausalLM.from_pretrained(record["merged"])
    changed = [n for n, p in tuned.state_dict().items() if not torch.equal(p, base.state_dict()[n])]
    assert changed, "training changed no weight"
    if method == "lora":
        assert all(any(m in n for m in ("proj",)) for n in changed)  # only the LoRA targets moved
    assert run_job(job) == json.loads((out / "train.json").read_text())  # done: not run again
    (out / "train.json").unlink()  # as if killed after the last checkpoint
    again = run_job(job)
    assert again["resumed_from"].endswith("checkpoint-2")


@pytest.mark.slow  # a fresh interpreter importing torch and TRL
def test_the_job_entry_point_reports_a_bad_job_with_exit_2(tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps(job_record("m", tmp_path / "missing.jsonl", cfg(), tmp_path / "o", chat=True)))
    (tmp_path / "missing.jsonl").write_text("")
    proc = subprocess.run([sys.executable, "-m", "selfdistill.train.finetune", str(job)], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "no training examples" in proc.stderr
