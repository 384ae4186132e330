"""DPO (train/preference.py) on a tiny Qwen2 model built here: pairs tokenized like SFT completions (a truncated
side without its end token), a real TRL DPOTrainer run with LoRA and full fine-tuning that writes train.json,
adapter/ and merged/, resumes from its checkpoint and does not rerun, and the job's runner in train/jobs.py."""

import json
from pathlib import Path

import pytest

pytest.importorskip("trl")

from selfdistill.errors import DataError  # noqa: E402
from selfdistill.spec import TrainMethod, TrainSpec  # noqa: E402
from selfdistill.train import jobs, preference  # noqa: E402
from selfdistill.train.finetune import job_record, load_model_and_tokenizer  # noqa: E402
from tests.generate.tiny_models import write_tiny_hf  # noqa: E402

PROMPT = [{"role": "user", "content": "Write f(x) returning x plus one."}]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_hf(tmp_path_factory.mktemp("tiny") / "model")


def write_pairs(path: Path, n: int = 4, chat: bool = True, truncated: bool = False) -> Path:
    rows = []
    for i in range(n):
        good, bad = f"def f(x):\n    return x + {1}\n# {i}\n", f"def f(x):\n    return x - {i}\n"
        if chat:
            rows.append({"prompt": PROMPT, "chosen": [{"role": "assistant", "content": good}],
                         "rejected": [{"role": "assistant", "content": bad}]})
        else:
            rows.append({"prompt": "# f(x) returns x plus one\n", "chosen": good, "rejected": bad})
        rows[-1] |= {"chosen_truncated": False, "rejected_truncated": truncated}
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def dpo_job(tiny, tmp_path, method="lora", chat=True, **settings):
    cfg = TrainSpec(method=method, lora_r=4, lora_alpha=8, batch_size=2, per_device_batch_size=1, save_steps=1,
                    max_length=256)
    job = job_record(str(tiny), write_pairs(tmp_path / "pairs.jsonl", chat=chat), cfg, tmp_path / "out", chat=chat,
                     algorithm="dpo")
    job["settings"] = {"beta": 0.25, "learning_rate": 1e-3} | settings
    return job


def test_a_pair_is_tokenized_like_two_sft_completions_sharing_the_prompt(tiny, tmp_path):
    _, tokenizer = load_model_and_tokenizer(str(tiny), None)
    pair = preference.load_pairs(write_pairs(tmp_path / "pairs.jsonl", n=1))[0]
    row = preference.tokenize_pair(tokenizer, pair)
    prompt = tokenizer.decode(row["prompt_ids"])
    assert "x plus one" in prompt and "def f" not in prompt
    assert tokenizer.decode(row["chosen_ids"]).startswith("def f(x):\n    return x + 1")
    assert row["chosen_ids"][-2:] == tokenizer("<|im_end|>\n", add_special_tokens=False)["input_ids"]
    cut = preference.tokenize_pair(tokenizer, pair | {"rejected_truncated": True})
    assert tokenizer.decode(cut["rejected_ids"]) == "def f(x):\n    return x - 0\n"  # no end-of-turn after it
    assert cut["chosen_ids"] == row["chosen_ids"]


def test_pairs_file_schema_and_learning_rate_defaults(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "chosen": "c"}) + "\n")
    with pytest.raises(DataError, match="needs 'prompt', 'chosen' and 'rejected'"):
        preference.load_pairs(bad)
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="no preference pairs"):
        preference.load_pairs(tmp_path / "empty.jsonl")
    assert preference.default_learning_rate(TrainMethod.LORA) == 5e-6
    assert preference.default_learning_rate(TrainMethod.FULL) == 5e-7
    assert jobs.runner_for({"algorithm": "dpo"}).module == "selfdistill.train.preference"


@pytest.mark.parametrize("method,chat", [("lora", True), ("full", False)])
def test_dpo_trains_writes_a_loadable_model_and_resumes(tiny, tmp_path, method, chat):
    import torch
    from transformers import AutoModelForCausalLM

    job = dpo_job(tiny, tmp_path, method=method, chat=chat)
    trainer, _, _ = preference.build_trainer(job, preference.load_pairs(Path(job["examples"])))
    assert trainer.args.beta == 0.25 and trainer.args.learning_rate == 1e-3 and trainer.args.loss_type == ["sigmoid"]
    assert (trainer.ref_model is None) == (method == "lora")  # LoRA: the adapter-disabled base is the reference
    del trainer
    record = preference.run_job(job)
    out = Path(job["out_dir"])
    assert json.loads((out / "train.json").read_text()) == record
    assert record["optimizer_steps"] == 2 and record["n_pairs"] == 4 and record["finite"] and record["margins_finite"]
    assert record["beta"] == 0.25 and record["effective_batch"] == 2 and record["method"] == method
    assert len(record["loss_curve"]) == 2 and record["reward_accuracy_last"] is not None
    assert record["reward_margin_last"] is not None and len(record["reward_margin_curve"]) == 2
    assert ("adapter" in record) == (method == "lora") and Path(record["merged"], "config.json").exists()
    base, tuned = AutoModelForCausalLM.from_pretrained(tiny), AutoModelForCausalLM.from_pretrained(record["merged"])
    assert any(not torch.equal(p, base.state_dict()[n]) for n, p in tuned.state_dict().items()), "nothing moved"
    assert preference.run_job(job) == record  # done: not run again
    (out / "train.json").unlink()  # as if killed after the last checkpoint
    assert preference.run_job(job)["resumed_from"].endswith("checkpoint-2")


def test_the_entry_point_reports_a_bad_job_with_exit_2(tmp_path, capsys):
    job = tmp_path / "job.json"
    (tmp_path / "pairs.jsonl").write_text("")
    job.write_text(json.dumps(job_record("m", tmp_path / "pairs.jsonl", TrainSpec(), tmp_path / "o", chat=True,
                                         algorithm="dpo")))
    assert preference.main([str(job)]) == 2
    assert "no preference pairs" in capsys.readouterr().err
    assert preference.main([]) == 2 and "selfdistill.train.preference JOB.json" in capsys.readouterr().err


def test_a_gguf_base_trains_fully_against_a_frozen_copy_of_itself(tmp_path):
    """A GGUF base is dequantized by finetune.load_model_and_tokenizer for the policy AND the reference (TRL could
    not reload it from its config), and the reference stays as loaded."""
    pytest.importorskip("gguf")
    import torch

    from tests.generate.tiny_models import write_tiny_qwen2_gguf

    (tmp_path / "gguf").mkdir()
    base = write_tiny_qwen2_gguf(tmp_path / "gguf" / "base.gguf")
    job = dpo_job(base, tmp_path, method="full", chat=True)
    trainer, _, _ = preference.build_trainer(job, preference.load_pairs(Path(job["examples"])))
    ref = trainer.ref_model
    before = {n: p.detach().clone() for n, p in ref.named_parameters()}
    assert ref is not None and not any(p.requires_grad for p in ref.parameters())
    trainer.train()
    assert all(torch.equal(p, before[n]) for n, p in ref.named_parameters())  # the reference did not move
    moved = [n for n, p in trainer.model.named_parameters() if n in before and not torch.equal(p, before[n])]
    assert moved and all(torch.isfinite(torch.tensor(h["loss"])) for h in trainer.state.log_history if "loss" in h)
