"""Mixed precision that trains, and an effective batch that is the spec's.

- precision = "bfloat16" for full fine-tuning means float32 master weights under bf16 autocast: at lr 1e-5
  the first AdamW step moves every weight by ~1e-5, which bf16 weights (8 bits of mantissa, the tiny model's
  weights ~0.5) would round away. The share of weight elements that changed must be close to float32's.
- train.batch_size must be per_device_batch_size x world size x accumulation exactly, or the job refuses
  (exit 2) instead of training with another effective batch.
"""

import json
from pathlib import Path

import pytest

pytest.importorskip("trl")

from selfdistill.errors import DataError  # noqa: E402
from selfdistill.spec import TrainSpec  # noqa: E402
from selfdistill.train.finetune import accumulation_steps, job_record, main, run_job  # noqa: E402
from tests.generate.tiny_models import write_tiny_hf  # noqa: E402
from tests.train.examples import write_examples  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_hf(tmp_path_factory.mktemp("tiny") / "model")


def changed_share(base: Path, trained: Path) -> float:
    import torch
    from transformers import AutoModelForCausalLM

    a = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).state_dict()
    b = AutoModelForCausalLM.from_pretrained(trained, dtype=torch.float32).state_dict()
    changed = sum(int((a[k] != b[k]).sum()) for k in a)
    return changed / sum(a[k].numel() for k in a)


def test_bf16_full_fine_tuning_keeps_float32_weights_and_its_updates_land(tiny, tmp_path):
    examples = write_examples(tmp_path / "ex.jsonl", n=4)
    shares, records = {}, {}
    for precision in ("float32", "bfloat16"):
        cfg = TrainSpec(method="full", learning_rate=1e-5, batch_size=4, per_device_batch_size=2, warmup_ratio=0.0,
                        scheduler="constant", save_steps=100, device="cpu", precision=precision)
        out = tmp_path / precision
        records[precision] = run_job(job_record(str(tiny), examples, cfg, out, chat=True))
        shares[precision] = changed_share(tiny, out / "merged")
    assert records["bfloat16"]["precision"] == "bf16 autocast over float32 weights"
    assert records["float32"]["precision"] == "float32 over float32 weights"
    assert shares["float32"] > 0.5
    assert shares["bfloat16"] > 0.8 * shares["float32"], shares  # pure bf16 weights: ~0.2 of float32's


def test_the_effective_batch_is_the_specs_or_the_job_refuses(tiny, tmp_path, monkeypatch, capsys):
    cfg = TrainSpec(batch_size=6, per_device_batch_size=1)
    assert accumulation_steps(cfg, 1) == 6 and accumulation_steps(cfg, 2) == 3 and accumulation_steps(cfg, 3) == 2
    with pytest.raises(DataError, match=r"batch_size = 6 is not a multiple of per_device_batch_size 1 x 4"):
        accumulation_steps(cfg, 4)
    job = job_record(str(tiny), write_examples(tmp_path / "ex.jsonl", n=4), cfg, tmp_path / "out", chat=True)
    (tmp_path / "job.json").write_text(json.dumps(job))
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert main([str(tmp_path / "job.json")]) == 2
    assert "multiple of 4" in capsys.readouterr().err and not (tmp_path / "out" / "train.json").exists()
