"""Generation throughput on the embedded default (Qwen2.5-Coder-0.5B-Instruct GGUF), in one run:

1. tokens/s of the `llamacpp` backend (parallel=1 and parallel=2) and of the `hf` backend (the same GGUF
   dequantized to fp32 by transformers, batched), with the same chat prompts and sampling parameters;
2. the time selfdistill adds over the bare engine call (goal: under 5%), for each engine, as seconds
   per generated token: backend.generate vs the engine called directly on the same loaded model, the
   same rendered prompts and parameters.

Each engine is warmed up before timing (threaded math runs slowly for the first seconds of a process
on these VMs). Output lengths differ between runs (sampling), so rates are per generated token.

Run: `python benchmarks/bench_generate.py [--prompts 4] [--per-prompt 2] [--max-new-tokens 128] [--skip-hf]`
"""

from __future__ import annotations

import argparse
import os
import time

from selfdistill.generate.base import GenRequest
from selfdistill.generate.default_model import default_model_path
from selfdistill.generate.params import SamplingParams, sample_seed
from selfdistill.generate.prompts import build_prompt
from selfdistill.tasks.humaneval import load_humaneval


def requests_for(n_prompts: int, per_prompt: int) -> list[GenRequest]:
    problems = load_humaneval()[:n_prompts]
    return [
        GenRequest(p.task_id, i, build_prompt(p, chat=True), sample_seed(0, p.task_id, i))
        for p in problems
        for i in range(per_prompt)
    ]


def timed(fn) -> tuple[float, int]:
    t0 = time.perf_counter()
    tokens = fn()
    return time.perf_counter() - t0, tokens


def via_backend(backend, requests, params) -> int:
    return sum(r.completion_tokens for r in backend.generate(requests, params))


def bare_llamacpp(backend, requests, params) -> int:
    """The engine alone: Llama.create_completion on the backend's loaded model and rendered prompts."""
    llm = backend._llms[0]
    tokens = 0
    for r in requests:
        out = llm.create_completion(
            backend.render_prompt(r.prompt), max_tokens=params.max_new_tokens, temperature=params.temperature,
            top_k=params.top_k, top_p=params.top_p, min_p=params.min_p, seed=r.seed,
        )
        tokens += out["usage"]["completion_tokens"]
    return tokens


def bare_hf(backend, requests, params) -> int:
    """The engine alone: model.generate on the backend's loaded model, batched the same way."""
    import torch

    tok, model, tokens = backend.tokenizer, backend.model, 0
    tok.padding_side = "left"
    for start in range(0, len(requests), backend.batch_size):
        batch = [backend.render_prompt(r.prompt) for r in requests[start : start + backend.batch_size]]
        enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(requests[start].seed)
        out = model.generate(
            **enc, do_sample=True, temperature=params.temperature, top_k=params.top_k, top_p=params.top_p,
            max_new_tokens=params.max_new_tokens, pad_token_id=backend.pad_id,
        )
        new = out[:, enc["input_ids"].shape[1]:]
        tokens += int((new != backend.pad_id).sum())
    return tokens


def report(name: str, backend_run: tuple[float, int], bare_run: tuple[float, int] | None) -> None:
    s, n = backend_run
    line = f"{name:<24} {n:6d} tokens {s:7.1f} s  {n / s:7.1f} tok/s"
    if bare_run:
        bs, bn = bare_run
        overhead = (s / n) / (bs / bn) - 1
        line += f"   bare engine {bn / bs:7.1f} tok/s   selfdistill overhead {100 * overhead:+.1f}%"
    print(line, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--per-prompt", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--skip-hf", action="store_true", help="skip the hf backend (its GGUF load takes ~1 min)")
    args = ap.parse_args()

    from selfdistill.generate.backends import load_backend

    model = str(default_model_path())
    requests = requests_for(args.prompts, args.per_prompt)
    params = SamplingParams(temperature=0.8, top_k=20, top_p=0.95, max_new_tokens=args.max_new_tokens)
    warm = requests[:1]
    print(f"machine: {os.cpu_count()} cores; model: {model}")
    print(f"{len(requests)} requests ({args.prompts} HumanEval chat prompts x {args.per_prompt}), "
          f"T={params.temperature} top_k={params.top_k} top_p={params.top_p} max_new_tokens={params.max_new_tokens}")

    for parallel in (1, 2):
        backend = load_backend("llamacpp", model, chat=True, options={"parallel": parallel})
        via_backend(backend, warm, params)
        run = timed(lambda: via_backend(backend, requests, params))
        bare = None
        if parallel == 1:
            bare_llamacpp(backend, warm, params)
            bare = timed(lambda: bare_llamacpp(backend, requests, params))
        report(f"llamacpp parallel={parallel}", run, bare)
        backend.close()

    if not args.skip_hf:
        backend = load_backend("hf", model, chat=True, options={"batch_size": len(requests)})
        via_backend(backend, warm, params)
        run = timed(lambda: via_backend(backend, requests, params))
        bare_hf(backend, warm, params)
        bare = timed(lambda: bare_hf(backend, requests, params))
        report(f"hf fp32 batch={len(requests)}", run, bare)
        backend.close()


if __name__ == "__main__":
    main()
