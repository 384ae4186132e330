"""Generation throughput on the embedded default (Qwen2.5-Coder-0.5B-Instruct GGUF), in one run:

1. tokens/s of the `llamacpp` backend (parallel=1 and parallel=2) and of the `hf` backend (the same GGUF
   dequantized to fp32 by transformers, batched), with the same chat prompts and sampling parameters;
2. the time selfdistill adds over the bare engine call (goal: under 5%), for each engine, as seconds
   per generated token: backend.generate vs the engine called directly on the same loaded model, the
   same rendered prompts and parameters, measured in alternating rounds (medians), because the speed
   of these shared VMs drifts by up to 4x within minutes.

Each engine is warmed up before timing (threaded math runs slowly for the first seconds of a process
on these VMs). Output lengths differ between runs (sampling), so rates are per generated token.

Run: `python benchmarks/bench_generate.py [--prompts 4] [--per-prompt 2] [--max-new-tokens 128] [--skip-hf]`
"""

from __future__ import annotations

import argparse
import os
import statistics
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


def alternate(rounds: int, ours, bare) -> tuple[list[float], list[float]]:
    """Seconds per token of `ours` and `bare`, measured in alternation (ours, bare, ours, bare, ...), so
    that drift in machine speed (these VMs share hosts) hits both sides alike; compare medians."""
    ours_spt, bare_spt = [], []
    for _ in range(rounds):
        for fn, out in ((ours, ours_spt), (bare, bare_spt)):
            s, n = timed(fn)
            out.append(s / n)
    return ours_spt, bare_spt


def report(name: str, ours_spt: list[float], bare_spt: list[float] | None = None) -> None:
    ours = statistics.median(ours_spt)
    line = f"{name:<24} {1 / ours:7.1f} tok/s (median of {len(ours_spt)}: {', '.join(f'{1 / x:.1f}' for x in ours_spt)})"
    if bare_spt:
        bare = statistics.median(bare_spt)
        line += f"   bare engine {1 / bare:7.1f} tok/s   selfdistill overhead {100 * (ours / bare - 1):+.1f}%"
    print(line, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--per-prompt", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per comparison (medians reported)")
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

    backend = load_backend("llamacpp", model, chat=True, options={"parallel": 1})
    via_backend(backend, warm, params), bare_llamacpp(backend, warm, params)
    ours, bare = alternate(args.rounds, lambda: via_backend(backend, requests, params),
                           lambda: bare_llamacpp(backend, requests, params))
    report("llamacpp parallel=1", ours, bare)
    backend.close()

    backend = load_backend("llamacpp", model, chat=True, options={"parallel": 2})
    via_backend(backend, warm, params)
    report("llamacpp parallel=2", [(lambda s, n: s / n)(*timed(lambda: via_backend(backend, requests, params)))
                                   for _ in range(args.rounds)])
    backend.close()

    if not args.skip_hf:
        backend = load_backend("hf", model, chat=True, options={"batch_size": len(requests)})
        via_backend(backend, warm, params), bare_hf(backend, warm, params)
        ours, bare = alternate(args.rounds, lambda: via_backend(backend, requests, params),
                               lambda: bare_hf(backend, requests, params))
        report(f"hf fp32 batch={len(requests)}", ours, bare)
        backend.close()


if __name__ == "__main__":
    main()
