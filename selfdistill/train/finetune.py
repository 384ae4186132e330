"""Fine-tune the base model on its own raw samples: TRL's SFTTrainer, plain cross-entropy on the completion.

One training job = one JSON file (`job.json`, written by the round) naming the base model, the examples
file, the TrainSpec and the output directory. It runs in its own process:

    python -m selfdistill.train.finetune JOB.json                      # CPU, or one GPU
    accelerate launch --config_file examples/accelerate/zero3.yaml \\
        -m selfdistill.train.finetune JOB.json                         # multi-GPU / multi-node

so the process that holds the model is never the one that forks sandboxed programs, its memory is given
back when it ends, and multi-GPU runs go through accelerate (DeepSpeed ZeRO-3 or FSDP configs in
examples/accelerate/) with no hand-written distributed code.

What it does:
- Examples are prompt-completion pairs: chat prompts as message lists (the model's own chat template; the
  completion is the assistant turn) or plain strings for base models, tokenized here (`tokenize_example`)
  exactly as TRL's SFTTrainer would, except that an example marked `truncated` (cut off at max_new_tokens)
  gets no end-of-turn / end-of-text token after it: it trains on the tokens the model produced, not on a
  stop it never chose. The prompt is masked: the loss is on the completion only
  (`completion_only_loss=True`), unweighted cross-entropy.
- LoRA (PEFT `LoraConfig`: rank, alpha, dropout, target modules) or full fine-tuning; learning rate,
  epochs, warm-up share, schedule, seed, batch (per device x processes x gradient accumulation = exactly
  train.batch_size, else exit 2), max length. bf16 full fine-tuning keeps float32 master weights under
  bf16 autocast (bf16 weights would round most lr-1e-5 updates away); LoRA's frozen base is bf16.
- One launch per output directory: each process dies with its parent (launcher) and each rank locks
  `locks/rank<R>.lock` while it trains, so a second launch there is refused (train/launch.py).
- Checkpoints every `save_steps` optimizer steps (the last two kept); a killed job run again resumes
  from the last checkpoint (`resume_from_checkpoint`), and a finished one (train.json exists) is not run
  again.
- Writes `adapter/` (LoRA: PEFT adapter), `merged/` (LoRA merged into the weights, or the fully
  fine-tuned model: a transformers directory any backend loads) and `train.json` (loss curve, steps,
  tokens, wall time, device) into the output directory.
- A GGUF base is loaded through transformers' `gguf_file=` and dequantized to float32, the same weights
  llama.cpp runs, so an adapter trained here applies to the GGUF the base was evaluated with.

Not here: which samples are trained on (selfdistill/ssd), the GGUF export (train/export.py).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from selfdistill.errors import BackendUnavailable, DataError
from selfdistill.spec import TrainMethod, TrainSpec

DONE = "train.json"


def job_record(model: str, examples: Path, cfg: TrainSpec, out_dir: Path, *, chat: bool,
               algorithm: str = "sft") -> dict:
    return {
        "algorithm": algorithm,  # the runner and trainer it names: train/jobs.py
        "model": model,
        "examples": str(examples),
        "train": cfg.model_dump(mode="json"),
        "out_dir": str(out_dir),
        "chat": chat,
    }


def load_examples(path: Path) -> list[dict]:
    from selfdistill.rundir import read_jsonl

    rows = []
    for i, row in read_jsonl(path, "training examples"):
        if "prompt" not in row or "completion" not in row:
            raise DataError(f"error: {path}:{i}: an example needs 'prompt' and 'completion'")
        rows.append({"prompt": row["prompt"], "completion": row["completion"], "truncated": bool(row.get("truncated"))})
    if not rows:
        raise DataError(f"error: {path} holds no training examples; nothing to fine-tune on")
    return rows


def load_model_and_tokenizer(model: str, dtype):
    """A local transformers directory, a hub id already in the local cache, or a .gguf file (dequantized)."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise BackendUnavailable(
            f"error: fine-tuning needs transformers, peft and trl ({exc.name} is missing); "
            "`pip install 'selfdistill[train]'` (or scripts/install.sh)"
        ) from None
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        kwargs = {"gguf_file": path.name}
        where = str(path.parent)
    else:
        kwargs, where = {}, model
    tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
    net = AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **kwargs)
    if kwargs:
        drop_gguf_label(net)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return net, tokenizer


def drop_gguf_label(net) -> None:
    """transformers dequantizes GGUF weights into plain float tensors on load, yet labels the model
    GGUF-quantized, and the Trainer refuses to train a model with that label. The tensors in memory are
    ordinary float weights, so the label (and its config entry, lest a saved model claim it) is dropped."""
    import torch

    if any(p.dtype not in (torch.float32, torch.bfloat16, torch.float16) for p in net.parameters()):
        raise DataError("error: the GGUF base did not load as float weights; convert it to a transformers directory")
    net.hf_quantizer = None
    net.is_quantized = False
    if hasattr(net.config, "quantization_config"):
        del net.config.quantization_config


def _device_and_dtype(cfg: TrainSpec):
    import torch

    cuda = torch.cuda.is_available() and cfg.device != "cpu"
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise DataError("error: train.device = 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    if cfg.precision == "bfloat16" or (cfg.precision == "auto" and cuda and torch.cuda.is_bf16_supported()):
        return cuda, torch.bfloat16
    return cuda, torch.float32


device_and_dtype = _device_and_dtype  # (cuda, dtype) for a TrainSpec; other runners use this name


def trainer_class(cuda: bool):
    """The SFTTrainer to run. On a GPU, TRL's as shipped: its fused LM head computes the completion's log-probs in
    vocabulary tiles and never holds the (batch, length, vocab) logits, which saves memory where memory binds.
    On a CPU that tiled head is the slow part of a step (1.8-2.1x a plain loop with Qwen's 151k vocabulary,
    benchmarks/bench_train.py), so the loss there is the model's own: its forward with the labels (TRL's collator
    sets -100 on the prompt and padding), transformers' cross-entropy over the full logits, summed over the
    completion tokens and divided by their count in the accumulated batch, as TRL's fused loss is. The same
    loss and gradients; TRL's extra per-step metrics (entropy, token accuracy) are not logged on this path."""
    from trl import SFTTrainer

    if cuda:
        return SFTTrainer
    from transformers import Trainer

    class ModelLossSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs["use_cache"] = False
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

    return ModelLossSFTTrainer


@dataclass(frozen=True)
class Algorithm:
    """A training algorithm's TRL pieces: its config class (a name in `trl`) and its trainer class for a device
    (`trainer(cuda)`)."""

    config: str
    trainer: Callable[[bool], type]


# job["algorithm"] -> its trainer; a new training algorithm is one entry here (and its runner in train/jobs.py)
TRAINERS: dict[str, Algorithm] = {"sft": Algorithm("SFTConfig", trainer_class)}


def algorithm_of(job: dict) -> Algorithm:
    name = job.get("algorithm", "sft")  # job files written before jobs named their algorithm are SFT
    if name not in TRAINERS:
        raise DataError(f"error: the training job names algorithm {name!r}; this trainer knows {', '.join(TRAINERS)}")
    return TRAINERS[name]


def accumulation_steps(cfg: TrainSpec, world: int) -> int:
    """Gradient-accumulation steps that make per-device batch x world size x steps = train.batch_size exactly."""
    per_step = cfg.per_device_batch_size * world
    if cfg.batch_size % per_step:
        raise DataError(
            f"error: train.batch_size = {cfg.batch_size} is not a multiple of per_device_batch_size "
            f"{cfg.per_device_batch_size} x {world} process(es) = {per_step}, so the effective batch would not be "
            f"the spec's; set train.batch_size to a multiple of {per_step} (or change per_device_batch_size / "
            "the launcher's process count)"
        )
    return cfg.batch_size // per_step


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):  # the shorter list bounds the prefix
        if x != y:
            break
        n += 1
    return n


def tokenize_example(tokenizer, example: dict) -> dict:
    """input_ids and completion_mask for one prompt-completion example, as TRL's SFTTrainer tokenizes it
    (chat: the chat template over prompt + completion; base: prompt + completion + the EOS token), except
    that a `truncated` example ends where the model was cut off: the prompt as sampled (with the generation
    prompt) followed by the raw tokens, and no end-of-turn / end-of-text token."""
    prompt, completion, cut = example["prompt"], example["completion"], bool(example.get("truncated"))
    if isinstance(prompt, list):  # chat messages
        prompt_text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        text = (prompt_text + "".join(m["content"] for m in completion) if cut
                else tokenizer.apply_chat_template(prompt + completion, tokenize=False))
        special = False  # the template writes every special token itself (apply_chat_template's own setting)
    else:
        eos = tokenizer.eos_token or ""
        prompt_text, special = prompt, True
        text = prompt + completion + ("" if cut or completion.endswith(eos) else eos)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=special)["input_ids"]
    ids = tokenizer(text, add_special_tokens=special)["input_ids"]
    n = _common_prefix(prompt_ids, ids)
    return {"input_ids": ids, "completion_mask": [0] * n + [1] * (len(ids) - n)}


def build_trainer(job: dict, examples: list[dict]):
    import trl
    from datasets import Dataset

    algorithm = algorithm_of(job)
    cfg = TrainSpec.model_validate(job["train"])
    out = Path(job["out_dir"])
    cuda, dtype = _device_and_dtype(cfg)
    import torch

    args = getattr(trl, algorithm.config)(
        **base_arguments(cfg, out, cuda, dtype, cfg.lr),
        completion_only_loss=True,
        packing=False,
    )
    # Full fine-tuning keeps float32 master weights under bf16 autocast (`bf16=True`): in bf16 weights an
    # update below 2^-8 of the weight rounds away (at lr 1e-5 most do). LoRA's base is frozen: bf16 is fine.
    net, tokenizer = load_model_and_tokenizer(job["model"], torch.float32 if cfg.method is TrainMethod.FULL else dtype)
    return algorithm.trainer(cuda)(
        model=net, args=args, train_dataset=Dataset.from_list([tokenize_example(tokenizer, e) for e in examples]),
        processing_class=tokenizer, peft_config=lora_config(cfg),
    ), cfg, tokenizer


def base_arguments(cfg: TrainSpec, out: Path, cuda: bool, dtype, lr: float) -> dict:
    """The TRL config settings every trainer here shares (SFT, DPO): schedule, batch (exactly train.batch_size),
    max length, seed, checkpoints every save_steps (the last two kept), one log line per step, device, precision."""
    import torch

    return {
        "output_dir": str(out / "checkpoints"),
        "num_train_epochs": cfg.epochs,
        "learning_rate": lr,
        "lr_scheduler_type": cfg.scheduler,
        "warmup_steps": cfg.warmup_ratio,  # a float below 1 is a share of the total steps
        "per_device_train_batch_size": cfg.per_device_batch_size,
        "gradient_accumulation_steps": accumulation_steps(cfg, int(os.environ.get("WORLD_SIZE", "1"))),
        "max_length": cfg.max_length,
        "seed": cfg.seed,
        "data_seed": cfg.seed,
        "save_strategy": "steps",
        "save_steps": cfg.save_steps,
        "save_total_limit": 2,
        "logging_steps": 1,
        "report_to": "none",
        "use_cpu": not cuda,
        "bf16": dtype == torch.bfloat16,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def lora_config(cfg: TrainSpec):
    """PEFT's LoraConfig for train.method = "lora" (rank, alpha, dropout, target modules); None for full."""
    if cfg.method is not TrainMethod.LORA:
        return None
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.target_modules), task_type="CAUSAL_LM", bias="none")


def run_job(job: dict, *, load: Callable = load_examples, build: Callable | None = None,
            extra: Callable | None = None) -> dict:
    """Train (resuming from the last checkpoint), save, and write train.json; return its record. Another
    algorithm's runner (train/preference.py) passes its own `load` (examples file -> rows), `build` ((job, rows)
    -> (trainer, TrainSpec, tokenizer)) and `extra` ((trainer, rows) -> its own train.json fields)."""
    from selfdistill.train.launch import hold_output

    out = Path(job["out_dir"])
    with hold_output(out):  # a second launch into `out` while this one runs is refused, not run beside it
        return _run_job(job, out, load, build or build_trainer, extra)


def _run_job(job: dict, out: Path, load: Callable, build: Callable, extra: Callable | None) -> dict:
    from transformers.trainer_utils import get_last_checkpoint

    if (out / DONE).exists():
        return json.loads((out / DONE).read_text(encoding="utf-8"))
    examples = load(Path(job["examples"]))
    started = time.time()
    trainer, cfg, tokenizer = build(job, examples)
    ckpt_dir = out / "checkpoints"
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    result = trainer.train(resume_from_checkpoint=last)
    wall = time.time() - started
    record = save_outputs(trainer, tokenizer, cfg, out, job["model"])
    if not trainer.is_world_process_zero():
        return {}
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    record |= {
        "method": cfg.method.value,
        "learning_rate": trainer.args.learning_rate,  # the peak rate it ran with (train.learning_rate or its default)
        "resumed_from": last,
        "n_examples": len(examples),
        "optimizer_steps": trainer.state.global_step,
        "epochs": cfg.epochs,
        "train_loss": result.training_loss,
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "loss_curve": losses,
        "wall_s": wall,
        "device": trainer.args.device.type,
        "device_count": max(1, trainer.args.world_size),
        "effective_batch": trainer.args.per_device_train_batch_size * trainer.args.gradient_accumulation_steps
        * max(1, trainer.args.world_size),
        "precision": ("bf16 autocast" if trainer.args.bf16 else "float32") + " over "
        + str(next(trainer.model.parameters()).dtype).removeprefix("torch.") + " weights",
        "finite": all(math.isfinite(x) for x in losses),
        "job": job,
    } | (extra(trainer, examples) if extra else {})
    if not record["finite"]:
        knob = (job.get("settings") or {}).get("learning_rate_key", "train.learning_rate")  # DPO: its own
        raise DataError(f"error: training diverged (loss {losses[-5:]}); lower {knob}")
    from selfdistill.rundir import write_json_atomic

    write_json_atomic(out / DONE, record)
    return record


def save_outputs(trainer, tokenizer, cfg: TrainSpec, out: Path, base_model: str) -> dict:
    """LoRA: the adapter and the merged model; full: the model. Both directories load with from_pretrained.

    Every rank calls `trainer.save_model` (under ZeRO-3 / FSDP it gathers the sharded weights); the
    merge then happens on the main process: in memory for a single process, else from the saved adapter
    and a fresh copy of the base (sharded LoRA weights cannot be merged in place)."""
    if cfg.method is TrainMethod.FULL:
        trainer.save_model(str(out / "merged"))
        if trainer.is_world_process_zero():
            tokenizer.save_pretrained(out / "merged")
        return {"merged": str(out / "merged")}
    trainer.save_model(str(out / "adapter"))
    if not trainer.is_world_process_zero():
        return {}
    tokenizer.save_pretrained(out / "adapter")
    if trainer.args.world_size == 1:
        merged = trainer.model.merge_and_unload()
    else:
        from peft import PeftModel

        base, _ = load_model_and_tokenizer(base_model, trainer.model.dtype)
        merged = PeftModel.from_pretrained(base, out / "adapter").merge_and_unload()
    merged.save_pretrained(out / "merged")
    tokenizer.save_pretrained(out / "merged")
    return {"adapter": str(out / "adapter"), "merged": str(out / "merged")}


def main(argv: list[str] | None = None, run: Callable | None = None, module: str = __name__) -> int:
    """One job file, run to its end (`run`: this module's run_job, or another runner's); exit 2 on bad input."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(f"usage: python -m {module if module != '__main__' else 'selfdistill.train.finetune'} JOB.json",
              file=sys.stderr)
        return 2
    from selfdistill.errors import SelfdistillError
    from selfdistill.train.launch import die_with_parent

    if "LOCAL_RANK" in os.environ:  # a worker of a launcher (torchrun / accelerate): it ends with the launcher;
        die_with_parent()           # a job started by hand (nohup ...) keeps outliving its shell
    try:
        job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
        (run or run_job)(job)
    except SelfdistillError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (OSError, json.JSONDecodeError) as exc:
        print(f"error: cannot read the training job {argv[0]}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
