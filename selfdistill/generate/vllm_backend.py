"""Generation with vLLM's offline engine (`vllm.LLM`), extra `selfdistill[vllm]` (GPU machines only).

    load_backend("vllm", model="Qwen/Qwen2.5-Coder-7B-Instruct", chat=True,
                 options={"tensor_parallel_size": 2, "max_model_len": 8192})

The engine is built with `generation_config="vllm"`, so the model's generation_config.json (Qwen's
top_k=20, repetition_penalty=1.05, ...) is NOT inherited; each request carries its own
`vllm.SamplingParams` from `sampling_kwargs`: n=1, temperature, top_p, top_k (-1 when off: accepted
as "off" by every vLLM >= 0.10, which also takes 0 in recent releases), min_p, max_tokens, seed (the
sample's own), stop, repetition_penalty=1.0. Chat models go through `LLM.chat` (the model's own chat
template, generation prompt added); base models through `LLM.generate` with the prompt string.
Requests are sent in chunks of `CHUNK_REQUESTS` with a list of per-request params, and results are
yielded chunk by chunk (a crash loses one chunk, not the run).

Sampling order: vLLM applies temperature, then min-p, then top-k/top-p; the SSD order is
temperature -> top-k -> top-p -> min-p. Top-k and min-p commute, so the two differ only when min-p
AND top-p are both set (then top-p's nucleus is computed after min-p's cut): that combination is
refused (SpecError) before any request rather than recorded as applied.

Data parallelism. A single offline `LLM(data_parallel_size>1)` raises ValueError in recent vLLM unless
`distributed_executor_backend="external_launcher"`; `llm_kwargs` passes that when
data_parallel_size > 1. Launch one process per DP rank (x TP) with torchrun, e.g.
    torchrun --nproc-per-node=4 -m selfdistill ...   (data_parallel_size=2, tensor_parallel_size=2)
Each rank generates only its share of the requests (`shard_of(task_id, sample_idx)` == its DP rank),
so every rank yields a disjoint subset. The eval stage writes each DP rank's share to its own file
(TP rank 0 of the rank writes: `writes_outputs`), meets the other ranks at `barrier()`, and DP rank 0
merges the files and scores the merged set (generate/shards.py):
    torchrun --nproc-per-node=4 -m selfdistill eval SPEC   (options: data_parallel_size=2, tensor_parallel_size=2)
The simpler alternative needs no launcher: run one selfdistill process per GPU group
(CUDA_VISIBLE_DEVICES=...) on a disjoint subset of tasks, with data_parallel_size = 1.

vLLM is imported inside the class only; importing this module needs neither vLLM nor torch.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from selfdistill.errors import SpecError
from selfdistill.generate.base import GenRequest, GenResult, chat_messages, prompt_text
from selfdistill.generate.params import SamplingParams

log = logging.getLogger(__name__)

CHUNK_REQUESTS = 1024  # requests per engine call: large enough to keep the batch full


def llm_kwargs(
    model: str, *, tensor_parallel_size: int = 1, data_parallel_size: int = 1, dtype: str = "auto",
    gpu_memory_utilization: float = 0.9, max_model_len: int | None = None,
    enable_prefix_caching: bool = True, seed: int = 0,
) -> dict[str, Any]:
    """Keyword arguments for `vllm.LLM(...)`."""
    kwargs: dict[str, Any] = {
        "model": model,
        "tensor_parallel_size": tensor_parallel_size,
        "dtype": dtype,
        "gpu_memory_utilization": gpu_memory_utilization,
        "enable_prefix_caching": enable_prefix_caching,
        "seed": seed,
        "generation_config": "vllm",  # never inherit the model's sampling defaults
    }
    if max_model_len is not None:
        kwargs["max_model_len"] = max_model_len
    if data_parallel_size > 1:
        kwargs["data_parallel_size"] = data_parallel_size
        kwargs["distributed_executor_backend"] = "external_launcher"
    return kwargs


def sampling_kwargs(params: SamplingParams, seed: int) -> dict[str, Any]:
    """Keyword arguments for one request's `vllm.SamplingParams(...)`."""
    return {
        "n": 1,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k if params.top_k > 0 else -1,
        "min_p": params.min_p,
        "max_tokens": params.max_new_tokens,
        "seed": seed,
        "stop": list(params.stop) or None,
        "repetition_penalty": 1.0,
    }


def shard_of(task_id: str, sample_idx: int, shards: int) -> int:
    """The DP rank that generates this sample: stable across ranks, orders and resumes."""
    digest = hashlib.sha256(f"{task_id}\x00{sample_idx}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


class VLLMBackend:
    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        chat: bool,
        tensor_parallel_size: int = 1,
        data_parallel_size: int = 1,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        enable_prefix_caching: bool = True,
        seed: int = 0,
        **unknown: Any,
    ) -> None:
        _check_options(unknown, tensor_parallel_size, data_parallel_size, gpu_memory_utilization, max_model_len)
        import vllm  # lazily: pulls torch and CUDA

        self._vllm = vllm
        self.model, self.chat = model, chat
        self.llm_kwargs = llm_kwargs(
            model, tensor_parallel_size=tensor_parallel_size, data_parallel_size=data_parallel_size,
            dtype=dtype, gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
            enable_prefix_caching=enable_prefix_caching, seed=seed,
        )
        self.data_parallel_size = data_parallel_size
        self._llm = vllm.LLM(**self.llm_kwargs)
        self.dp_rank = _dp_rank(self._llm) if data_parallel_size > 1 else 0
        self.writes_outputs = _tp_rank(tensor_parallel_size) == 0  # TP peers hold the same outputs

    def generate(self, requests: Sequence[GenRequest], params: SamplingParams) -> Iterator[GenResult]:
        """Results for this DP rank's requests, chunk by chunk, in request order within a chunk."""
        from selfdistill.generate.servers import Dialect

        refused = Dialect("vllm", None, detected=False).refusals(params)
        if refused:
            raise SpecError("error: vLLM cannot sample as the spec says: " + "; ".join(refused))
        mine = [r for r in requests if self._is_mine(r)]
        for start in range(0, len(mine), CHUNK_REQUESTS):
            chunk = mine[start : start + CHUNK_REQUESTS]
            per_request = [self._vllm.SamplingParams(**sampling_kwargs(params, r.seed)) for r in chunk]
            outputs = self._run(chunk, per_request)
            if len(outputs) != len(chunk):
                raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(chunk)} requests")
            for request, output in zip(chunk, outputs, strict=True):
                yield to_result(request, output)

    def describe(self) -> dict:
        return {
            "backend": self.name, "model": self.model, "chat": self.chat,
            "vllm": getattr(self._vllm, "__version__", "unknown"),
            "llm_kwargs": dict(self.llm_kwargs), "dp_rank": self.dp_rank,
        }

    def barrier(self) -> None:
        """Wait for every rank of the launch (data parallelism only; vLLM initialised torch.distributed)."""
        if self.data_parallel_size == 1:
            return
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()

    def close(self) -> None:
        self._llm = None
        gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _is_mine(self, request: GenRequest) -> bool:
        if self.data_parallel_size == 1:
            return True
        return shard_of(request.task_id, request.sample_idx, self.data_parallel_size) == self.dp_rank

    def _run(self, chunk: list[GenRequest], per_request: list[Any]) -> list[Any]:
        if self.chat:
            conversations = [chat_messages(r) for r in chunk]
            return self._llm.chat(conversations, sampling_params=per_request, use_tqdm=False)
        prompts = [prompt_text(r) for r in chunk]
        return self._llm.generate(prompts, sampling_params=per_request, use_tqdm=False)


def to_result(request: GenRequest, output: Any) -> GenResult:
    """A `vllm.RequestOutput` (one completion) as a GenResult; an aborted request is an error."""
    completion = output.outputs[0]
    reason = completion.finish_reason
    if reason not in ("stop", "length"):
        raise RuntimeError(
            f"vLLM ended {request.task_id}#{request.sample_idx} with finish_reason={reason!r}; "
            "not recorded as a sample"
        )
    return GenResult(
        task_id=request.task_id, sample_idx=request.sample_idx, seed=request.seed,
        text=completion.text, finish_reason=reason,
        completion_tokens=len(completion.token_ids), prompt_tokens=len(output.prompt_token_ids or ()),
    )


def _dp_rank(llm: Any) -> int:
    return int(llm.llm_engine.vllm_config.parallel_config.data_parallel_rank)


def _tp_rank(tensor_parallel_size: int) -> int:
    if tensor_parallel_size == 1:
        return 0
    try:
        from vllm.distributed.parallel_state import get_tensor_model_parallel_rank

        return int(get_tensor_model_parallel_rank())
    except (ImportError, AssertionError, AttributeError):  # no group: the launcher's rank order (TP innermost)
        return int(os.environ.get("RANK", "0")) % tensor_parallel_size


def _check_options(unknown: dict, tp: Any, dp: Any, gpu_memory_utilization: Any, max_model_len: Any) -> None:
    problems = []
    if unknown:
        problems.append(
            f"unknown option(s) {', '.join(sorted(unknown))}; the vllm backend takes tensor_parallel_size, "
            "data_parallel_size, dtype, gpu_memory_utilization, max_model_len, enable_prefix_caching, seed"
        )
    for name, value in (("tensor_parallel_size", tp), ("data_parallel_size", dp)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"{name}={value!r} must be an integer >= 1")
    if not isinstance(gpu_memory_utilization, (int, float)) or not 0 < gpu_memory_utilization <= 1:
        problems.append(f"gpu_memory_utilization={gpu_memory_utilization!r} must be in (0, 1]")
    if max_model_len is not None and (not isinstance(max_model_len, int) or max_model_len < 1):
        problems.append(f"max_model_len={max_model_len!r} must be an integer >= 1 (tokens) or unset")
    if problems:
        raise SpecError("error: generation.options for backend \"vllm\": " + "; ".join(problems))
