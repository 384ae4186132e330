"""Training examples for one arm: the prompt exactly as it was sampled, the raw completion as the target.
Which samples an arm trains on is the arm's own `select` (ssd/arms.py).

Chat models train on the chat messages the sample was drawn from (the model's own chat template) with the
raw reply as the assistant turn: code fences, prose and all, since that is what the model produced. Base
models train on prompt string + raw continuation.

A sample cut off at max_new_tokens (finish_reason "length") is marked `truncated`: it is not a finished
turn, so it never trains with the end-of-turn token after it (train/finetune.py tokenizes it without one).
`ssd.truncated` declares what happens to it: "train-no-eos" (the default) trains the tokens it produced,
"exclude" drops it. Excluding selects the shorter samples, a length bias the battery would then see as
drift, which is why it is not the default; either way the count and share are recorded per arm.

Anchor data (optional, declared in the spec): a JSONL of {prompt, completion} examples mixed in at a
declared share of the final set, against format drift. Drawn without replacement with the training
seed; a file too small for the share is an error, not a silent shortfall.
"""

from __future__ import annotations

import random
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.rundir import dumps_line, write_bytes_atomic
from selfdistill.tasks.problem import Problem


def example(problem: Problem, sample: dict, chat: bool) -> dict:
    from selfdistill.generate.prompts import build_prompt

    prompt = build_prompt(problem, chat)
    if chat:
        return {
            "prompt": [dict(m) for m in prompt],
            "completion": [{"role": "assistant", "content": sample["raw"]}],
            "truncated": is_truncated(sample),
            "task_id": sample["task_id"],
            "sample_idx": sample["sample_idx"],
            "origin": "sample",
        }
    return {"prompt": prompt, "completion": sample["raw"], "truncated": is_truncated(sample),
            "task_id": sample["task_id"], "sample_idx": sample["sample_idx"], "origin": "sample"}


def is_truncated(sample: dict) -> bool:
    """Cut off at max_new_tokens: the model had not finished its turn."""
    return sample.get("finish_reason") == "length"


def apply_truncated_policy(kept: list[dict], policy: str) -> tuple[list[dict], dict]:
    """The samples an arm trains on under `ssd.truncated`, and the record of what happened to the cut-off ones."""
    from selfdistill.spec import TruncatedPolicy

    policy = TruncatedPolicy(policy)
    cut = sum(is_truncated(s) for s in kept)
    trained = [s for s in kept if not is_truncated(s)] if policy is TruncatedPolicy.EXCLUDE else kept
    return trained, {
        "policy": policy.value,
        "n_kept": len(kept),
        "n_truncated": cut,
        "truncated_share": cut / len(kept) if kept else 0.0,
        "n_excluded": len(kept) - len(trained),
        "n_trained_without_end": cut if policy is TruncatedPolicy.TRAIN_NO_EOS else 0,
    }


def read_anchor(path: Path, chat: bool) -> list[dict]:
    from selfdistill.rundir import read_jsonl

    rows = []
    for i, row in read_jsonl(path, "anchor data"):
        prompt, completion = row.get("prompt"), row.get("completion")
        if not isinstance(prompt, str) or not isinstance(completion, str):
            raise DataError(f'error: {path}:{i}: anchor examples need "prompt" and "completion" strings')
        if chat:
            rows.append({"prompt": [{"role": "user", "content": prompt}],
                         "completion": [{"role": "assistant", "content": completion}]})
        else:
            rows.append({"prompt": prompt, "completion": completion})
    return rows


def mix_anchor(examples: list[dict], anchor: list[dict], ratio: float, seed: int, path: str) -> tuple[list[dict], dict]:
    """Add anchor examples so they make up `ratio` of the result; return the examples and a record."""
    if ratio <= 0:
        return examples, {"anchor_ratio": 0.0, "n_anchor": 0}
    want = round(ratio / (1 - ratio) * len(examples))
    if want > len(anchor):
        raise DataError(
            f"error: train.anchor_ratio = {ratio} needs {want} anchor examples for {len(examples)} samples, "
            f"but {path} has {len(anchor)}; add anchor examples or lower the ratio"
        )
    rng = random.Random(seed)
    chosen = [a | {"origin": "anchor"} for a in rng.sample(anchor, want)]
    mixed = examples + chosen
    rng.shuffle(mixed)
    return mixed, {"anchor_ratio": ratio, "n_anchor": want, "anchor_data": path,
                   "realized_ratio": want / len(mixed) if mixed else 0.0}


def write_examples(path: Path, examples: list[dict]) -> None:
    write_bytes_atomic(path, "".join(dumps_line(e) + "\n" for e in examples).encode("utf-8"))
