"""The seam every backend implements: requests in (one per sample, with its own seed), results out.

A request's prompt is either a list of chat messages (the backend applies the model's OWN chat template)
or a plain string (base models: continuation). Backends yield results as they finish, in any order; the
eval stage matches them by (task_id, sample_idx) and appends each one to samples.jsonl at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from selfdistill.generate.params import SamplingParams

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": ...}


@dataclass(frozen=True)
class GenRequest:
    task_id: str
    sample_idx: int
    prompt: str | tuple[Message, ...]
    seed: int


def chat_messages(request: GenRequest) -> list[Message]:
    """The request's chat messages (for backends that take messages); a plain string is a caller bug."""
    if isinstance(request.prompt, str):
        raise TypeError(f"{request.task_id}: a chat backend needs messages, got a plain prompt string")
    return [dict(m) for m in request.prompt]


def prompt_text(request: GenRequest) -> str:
    """The request's prompt string (for base-model continuation); messages here are a caller bug."""
    if not isinstance(request.prompt, str):
        raise TypeError(f"{request.task_id}: a base-model backend needs a prompt string, got messages")
    return request.prompt


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` before the earliest occurrence of any stop string; True when one was found."""
    hits = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


@dataclass(frozen=True)
class GenResult:
    task_id: str
    sample_idx: int
    seed: int
    text: str  # raw completion text, exactly as the model produced it (stop string removed)
    finish_reason: str  # "stop" (end of generation or a stop string) | "length" (max_new_tokens)
    completion_tokens: int
    prompt_tokens: int


class Backend(Protocol):
    name: str

    def generate(self, requests: Sequence[GenRequest], params: SamplingParams) -> Iterator[GenResult]:
        """One result per request; `params.n` is ignored here (the eval stage expands n into requests)."""
        ...

    def describe(self) -> dict:
        """What to record in the run manifest: model path or id, engine version, dtype, device, threads."""
        ...

    def close(self) -> None: ...
