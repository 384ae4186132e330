"""One fine-tuning optimizer step: selfdistill's TRL trainer against a plain PyTorch loop, in one run.

The model is built from a config with Qwen's real vocabulary (151,936 tokens; hidden 256, 2 layers, random
weights, no download), where the LM head and its loss dominate a step, as they do for a 0.5B model with
short sequences. Three ways to run the same optimizer steps on the same collated batches (LoRA as the
quickstart trains it: r 32, alpha 64 on q/k/v/o; AdamW, same learning rate):

- `trl fused head`: TRL 1.16's SFTTrainer as shipped, its loss from the fused LM head
  (`fused_lm_head=True`: per-token log-probs in vocabulary tiles, never the full logits);
- `trl own loss`: the SFTTrainer selfdistill runs on a CPU (`selfdistill.train.finetune.trainer_class`),
  the model's own forward and cross-entropy (transformers' ForCausalLMLoss on the full logits);
- `plain loop`: `loss = model(**batch).loss; loss.backward(); opt.step(); opt.zero_grad()`, with the
  optimizer the Trainer builds (`trainer.create_optimizer()`).

Each is timed per optimizer step after one warm-up step, alternating between them round by round (these
shared VMs drift), and the medians are compared: goal `trl own loss` / `plain loop` <= 1.2.

Run: `python benchmarks/bench_train.py [--steps 4] [--rounds 3] [--seq 256] [--batch 4]` (~2 min on 2 cores)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

VOCAB = 151936


def build_model(seed: int = 0):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=VOCAB, hidden_size=256, intermediate_size=704, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         tie_word_embeddings=True)
    return Qwen2ForCausalLM(config)


def tokenizer():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.generate.tiny_models import _byte_level_tokenizer

    return _byte_level_tokenizer()


def dataset(n: int, seq: int, seed: int = 0):
    """Pre-tokenized prompt/completion examples with ids across the whole vocabulary."""
    import random

    from datasets import Dataset

    rng = random.Random(seed)
    prompt = seq // 4
    return Dataset.from_list([
        {"input_ids": [rng.randrange(300, VOCAB) for _ in range(seq)],
         "completion_mask": [0] * prompt + [1] * (seq - prompt)}
        for _ in range(n)
    ])


def make_trainer(kind: str, out: Path, steps: int, batch: int, seq: int):
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from selfdistill.train.finetune import trainer_class

    cls = SFTTrainer if kind == "fused" else trainer_class(cuda=False)
    args = SFTConfig(output_dir=str(out / kind), max_steps=steps, per_device_train_batch_size=batch,
                     gradient_accumulation_steps=1, learning_rate=2e-4, max_length=seq, completion_only_loss=True,
                     packing=False, save_strategy="no", logging_steps=1, report_to="none", use_cpu=True,
                     disable_tqdm=True, dataloader_num_workers=0, lr_scheduler_type="constant", seed=0)
    lora = LoraConfig(r=32, lora_alpha=64, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                      task_type="CAUSAL_LM", bias="none")
    return cls(model=build_model(), args=args, train_dataset=dataset(batch * steps, seq), processing_class=tokenizer(),
               peft_config=lora)


def trainer_step_s(trainer) -> list[float]:
    """Seconds per optimizer step of trainer.train(), from step-end timestamps (the first step is warm-up)."""
    from transformers import TrainerCallback

    stamps = []

    class Stamp(TrainerCallback):
        def on_step_end(self, *_a, **_k):
            stamps.append(time.perf_counter())

    trainer.add_callback(Stamp())
    trainer.train()
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


def plain_step_s(trainer) -> list[float]:
    """The same steps as a plain loop: the trainer's model, collated batches and optimizer (the Trainer's own
    choice of AdamW implementation, so the comparison is about the loop and the loss, not the optimizer)."""
    model = trainer.model
    model.train()
    opt = trainer.create_optimizer()
    times = []
    for batch in trainer.get_train_dataloader():
        batch = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "labels")}
        t0 = time.perf_counter()
        loss = model(**batch, use_cache=False).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return times[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per measurement (the first is warm-up)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    args = ap.parse_args()
    import torch

    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; Qwen2 config vocab {VOCAB}, hidden 256, 2 layers; "
          f"batch {args.batch} x {args.seq} tokens; LoRA r 32 on q/k/v/o", flush=True)
    times: dict[str, list[float]] = {"trl fused head": [], "trl own loss": [], "plain loop": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            times["trl fused head"] += trainer_step_s(make_trainer("fused", Path(tmp), args.steps, args.batch,
                                                                   args.seq))
            own = make_trainer("own", Path(tmp), args.steps, args.batch, args.seq)
            times["trl own loss"] += trainer_step_s(own)
            times["plain loop"] += plain_step_s(make_trainer("own", Path(tmp), args.steps, args.batch, args.seq))
            print(f"round {r + 1}: " + ", ".join(f"{k} {statistics.median(v):.2f} s/step" for k, v in times.items()),
                  flush=True)
    plain = statistics.median(times["plain loop"])
    for name, t in times.items():
        print(f"{name:<15} {statistics.median(t):6.2f} s/step (median of {len(t)})   "
              f"{statistics.median(t) / plain:.2f}x plain")


if __name__ == "__main__":
    main()
