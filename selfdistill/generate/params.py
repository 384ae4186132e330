"""Sampling parameters, stated explicitly and applied identically by every backend.

Order (the SSD paper's, arXiv 2604.01193): temperature -> top-k -> top-p -> min-p -> sample. Engines
differ by default (llama.cpp applies temperature LAST; transformers fills unset fields from the model's
saved generation_config; vLLM runs min-p before top-p), so each backend builds its own chain from
these fields and never inherits a model's `generation_config` silently.

Seeds: one per sample, derived from (run seed, task_id, sample_idx) by a hash, so a sample can be
regenerated alone, resumed, or produced by any backend with the same seed; recorded with each sample.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

SEED_MODULUS = 2**31 - 1  # seeds in 1..2^31-1: valid for llama.cpp (uint32), torch, vLLM and OpenAI servers


@dataclass(frozen=True)
class SamplingParams:
    temperature: float
    top_p: float = 1.0  # 1.0 = off
    top_k: int = 0  # 0 = off
    min_p: float = 0.0  # 0.0 = off
    max_new_tokens: int = 512
    n: int = 1  # samples per prompt
    seed: int = 0  # the run seed; per-sample seeds derive from it
    stop: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        problems = []
        if self.temperature < 0:
            problems.append(f"temperature={self.temperature} must be >= 0 (0 = greedy)")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p={self.top_p} must be in (0, 1] (1 = off)")
        if self.top_k < 0:
            problems.append(f"top_k={self.top_k} must be >= 0 (0 = off)")
        if not 0 <= self.min_p < 1:
            problems.append(f"min_p={self.min_p} must be in [0, 1) (0 = off)")
        if self.max_new_tokens < 1 or self.n < 1:
            problems.append(f"max_new_tokens={self.max_new_tokens} and n={self.n} must be >= 1")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def to_json(self) -> dict:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


def sample_seed(run_seed: int, task_id: str, sample_idx: int) -> int:
    """A per-sample seed in 1..2^31-1 from (run seed, task id, sample index); stable across backends."""
    digest = hashlib.sha256(f"{run_seed}\x00{task_id}\x00{sample_idx}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SEED_MODULUS + 1
