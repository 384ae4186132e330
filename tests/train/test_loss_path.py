"""The CPU loss path (`trainer_class(cuda=False)`: the model's own forward and cross-entropy) gives TRL's fused
LM-head loss and gradients on the same batch: only the speed differs (benchmarks/bench_train.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from selfdistill.train.finetune import trainer_class
from tests.generate.tiny_models import write_tiny_hf


def _loss_and_grads(cls, model_dir, tmp_path, batch):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    args = SFTConfig(output_dir=str(tmp_path / cls.__name__), per_device_train_batch_size=2, report_to="none",
                     use_cpu=True, completion_only_loss=True, max_length=64, disable_tqdm=True)
    data = Dataset.from_list([{"input_ids": [40 + i % 50 for i in range(n)], "completion_mask": [0] * 5 + [1] * (n - 5)}
                              for n in (20, 33)])
    trainer = cls(model=model, args=args, train_dataset=data, processing_class=tok)
    inputs = trainer.data_collator([data[0], data[1]])
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, dict(inputs), num_items_in_batch=batch(inputs))
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("count", [False, True], ids=["per-batch mean", "accumulated token count"])
def test_model_loss_equals_trls_fused_loss_with_the_same_gradients(tmp_path, count):
    model_dir = write_tiny_hf(tmp_path / "tiny")

    def batch(inputs):  # the Trainer passes the accumulated batch's completion-token count when it has one
        return (inputs["labels"][:, 1:] != -100).sum() if count else None

    assert trainer_class(cuda=True) is SFTTrainer
    fused, fused_grads = _loss_and_grads(SFTTrainer, model_dir, tmp_path, batch)
    own, own_grads = _loss_and_grads(trainer_class(cuda=False), model_dir, tmp_path, batch)
    assert own == pytest.approx(fused, rel=1e-5) and fused > 0
    assert own_grads.keys() == fused_grads.keys() and own_grads
    for name, g in fused_grads.items():
        torch.testing.assert_close(own_grads[name], g, rtol=1e-4, atol=1e-6)
