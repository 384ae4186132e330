"""Preference optimization on (prompt, chosen, rejected) pairs: TRL's DPOTrainer, the sigmoid DPO loss, beta declared.

One job = one JSON file (`job.json`, written by the round for the `dpo` comparator arm, ssd/comparators.py) naming
the base model, the pairs file, the TrainSpec, the output directory and `settings` (beta, learning rate). It runs in
its own process, like SFT (train/finetune.py), and the same way on GPUs:

    python -m selfdistill.train.preference JOB.json
    accelerate launch --config_file examples/accelerate/zero3.yaml -m selfdistill.train.preference JOB.json

What it does:
- A pair is the prompt as sampled (chat messages, or a plain string for a base model), the chosen completion (a
  program that passed the pool's tests) and the rejected one (a program of the same prompt that failed them).
  Each side is tokenized by finetune.tokenize_example, exactly as the SFT arms tokenize a completion, so a side
  cut off at max_new_tokens (`chosen_truncated` / `rejected_truncated`) gets no end-of-turn / end-of-text token
  (TRL would append one); the prompt tokens are those both sides share.
- The reference policy: with LoRA, the base with the adapter disabled (TRL does this itself: no second copy);
  with full fine-tuning, an explicit frozen copy of the base loaded the same way as the policy (a GGUF base
  too, which TRL could not reload from its config).
- DPOConfig: loss_type ["sigmoid"] (the DPO paper's loss), beta and the learning rate from `settings`
  (comparator.dpo_beta, comparator.dpo_learning_rate), everything else from [train] exactly as SFT
  (finetune.base_arguments: epochs, schedule, warm-up, batch = train.batch_size exactly, max_length, seed,
  checkpoints every save_steps, device, precision).
- Resume, one launch per output directory, outputs (`adapter/`, `merged/`) and train.json are finetune.run_job's,
  so export and evaluation treat a DPO arm like any other; train.json adds beta, the number of pairs, and the
  last logged reward margin and accuracy (TRL's rewards/margins, rewards/accuracies).

Not here: which pairs are trained on (ssd/comparators.py), the GGUF export (train/export.py).
"""

from __future__ import annotations

import math
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.spec import TrainMethod, TrainSpec
from selfdistill.train import finetune

DEFAULT_BETA = 0.1  # TRL's DPOConfig default (the DPO paper used 0.1 in most of its experiments)


def default_learning_rate(method: TrainMethod) -> float:
    """DPO's usual peak learning rates, well below SFT's: 5e-6 for LoRA, 5e-7 for full fine-tuning (the
    alignment-handbook's Zephyr DPO recipes; TRL's own default is 1e-6)."""
    return 5e-6 if method is TrainMethod.LORA else 5e-7


def load_pairs(path: Path) -> list[dict]:
    from selfdistill.rundir import read_jsonl

    rows = []
    for i, row in read_jsonl(path, "preference pairs"):
        if not all(k in row for k in ("prompt", "chosen", "rejected")):
            raise DataError(f"error: {path}:{i}: a preference pair needs 'prompt', 'chosen' and 'rejected'")
        rows.append({"prompt": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"],
                     "chosen_truncated": bool(row.get("chosen_truncated")),
                     "rejected_truncated": bool(row.get("rejected_truncated"))})
    if not rows:
        raise DataError(f"error: {path} holds no preference pairs; nothing to train on")
    return rows


def tokenize_pair(tokenizer, pair: dict) -> dict:
    """prompt_ids, chosen_ids and rejected_ids, as DPOTrainer's collator takes them: each side tokenized with its
    prompt by finetune.tokenize_example; the prompt is the token prefix both sides share."""
    sides = {}
    for side in ("chosen", "rejected"):
        tok = finetune.tokenize_example(tokenizer, {"prompt": pair["prompt"], "completion": pair[side],
                                                    "truncated": pair[f"{side}_truncated"]})
        sides[side] = (tok["input_ids"], tok["completion_mask"].count(0))
    n = min(sides["chosen"][1], sides["rejected"][1])
    return {"prompt_ids": sides["chosen"][0][:n], "chosen_ids": sides["chosen"][0][n:],
            "rejected_ids": sides["rejected"][0][n:]}


def trainer_class():
    """TRL's DPOTrainer, handed pairs already tokenized by `tokenize_pair` (its own tokenization would end a
    truncated side with an end-of-turn token). Like TRL, a pair whose prompt alone fills max_length is dropped
    (build_trainer does that, and counts it)."""
    from trl import DPOTrainer

    class TokenizedPairsDPOTrainer(DPOTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return dataset

    return TokenizedPairsDPOTrainer


def build_trainer(job: dict, pairs: list[dict]):
    """(trainer, TrainSpec, tokenizer) for one DPO job."""
    import torch
    import trl
    from datasets import Dataset

    cfg = TrainSpec.model_validate(job["train"])
    settings = job.get("settings") or {}
    beta = float(settings.get("beta", DEFAULT_BETA))
    lr = float(settings.get("learning_rate") or default_learning_rate(cfg.method))
    cuda, dtype = finetune.device_and_dtype(cfg)
    args = trl.DPOConfig(**finetune.base_arguments(cfg, Path(job["out_dir"]), cuda, dtype, lr), beta=beta,
                         loss_type=["sigmoid"])
    weights = torch.float32 if cfg.method is TrainMethod.FULL else dtype  # as SFT: fp32 master weights for full
    net, tokenizer = finetune.load_model_and_tokenizer(job["model"], weights)
    ref = None
    if cfg.method is TrainMethod.FULL:  # LoRA: the reference is the base with the adapter disabled (TRL)
        ref, _ = finetune.load_model_and_tokenizer(job["model"], weights)
        ref.requires_grad_(False)
        ref.eval()
    rows = [tokenize_pair(tokenizer, p) for p in pairs]
    kept = [r for r in rows if len(r["prompt_ids"]) < cfg.max_length]
    if not kept:
        raise DataError(f"error: every preference pair's prompt fills train.max_length = {cfg.max_length} "
                        "tokens, leaving nothing to compare; raise train.max_length")
    trainer = trainer_class()(model=net, ref_model=ref, args=args, train_dataset=Dataset.from_list(kept),
                              processing_class=tokenizer, peft_config=finetune.lora_config(cfg))
    trainer.dropped_long_prompts = len(rows) - len(kept)
    return trainer, cfg, tokenizer


def dpo_record(trainer, pairs: list[dict]) -> dict:
    """train.json's DPO fields: beta, the pairs, and the last logged reward margin / accuracy (TRL's metrics:
    beta x the policy-to-reference log-ratio, chosen minus rejected; the share of pairs where it is positive)."""
    history = trainer.state.log_history

    def last(key):
        values = [h[key] for h in history if key in h]
        return values[-1] if values else None

    margins = [h["rewards/margins"] for h in history if "rewards/margins" in h]
    return {
        "algorithm": "dpo",
        "beta": trainer.args.beta,
        "loss_type": list(trainer.args.loss_type),
        "reference": "a frozen copy of the base" if trainer.ref_model is not None
        else "the base with the LoRA adapter disabled",
        "n_pairs": len(pairs),
        "n_pairs_dropped_long_prompt": getattr(trainer, "dropped_long_prompts", 0),
        "n_pairs_truncated_side": sum(p["chosen_truncated"] or p["rejected_truncated"] for p in pairs),
        "reward_margin_first": margins[0] if margins else None,
        "reward_margin_last": last("rewards/margins"),
        "reward_accuracy_last": last("rewards/accuracies"),
        "reward_margin_curve": margins,
        "margins_finite": all(math.isfinite(m) for m in margins),
    }


def run_job(job: dict) -> dict:
    """Train (resuming from the last checkpoint), save, and write train.json: finetune.run_job with DPO's pieces."""
    return finetune.run_job(job, load=load_pairs, build=build_trainer, extra=dpo_record)


def main(argv: list[str] | None = None) -> int:
    return finetune.main(argv, run=run_job, module="selfdistill.train.preference")


if __name__ == "__main__":
    raise SystemExit(main())
