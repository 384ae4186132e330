"""Generation throughput on the embedded default (Qwen2.5-Coder-0.5B-Instruct GGUF), in one run:

1. batched vs sequential: tokens/s of the `llamacpp` backend decoding the n samples of a prompt together
   (`batch` = n, one llama.cpp batch, the prompt evaluated once) against one sequence at a time (`batch` = 1),
   on the same requests (same prompts, seeds, parameters); goal >= 1.8x at batch 16 on 2 cores. With
   `--prompts` > 1 the batched side also gains from continuous batching (a finished sequence's slot takes
   the next prompt's sample), which the bare loop below does not do;
2. the time selfdistill adds over the bare engine (goal: under 5%), as seconds per generated token:
   backend.generate vs a minimal loop over llama.cpp's batch API (decode, per-sequence sampler chains,
   end at end-of-generation or max tokens; no stop strings, records or checks) on the same context;
3. optionally (`--hf`) the `hf` backend (the same GGUF dequantized to fp32, batched) with its bare
   `model.generate`.

Every comparison runs in alternating rounds (A, B, A, B, ...) and reports medians, because the speed of
these shared VMs drifts by up to 4x within minutes; the ratios come from one run. Each engine is warmed up
before timing. Output lengths differ between the two sides of a sampling comparison, so rates are per
generated token.

Run: `python benchmarks/bench_generate.py [--prompts 1] [--n 16] [--max-new-tokens 128] [--rounds 3] [--hf]`
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


def bare_batched(backend, requests, params) -> int:
    """The engine alone: llama.cpp's batch API on the backend's batch context, groups of `batch` requests of
    one prompt (what this benchmark sends): prompt minus its last token evaluated once and copied, then one
    token per live sequence per step, per-sequence sampler chains, until end-of-generation or max tokens."""
    import llama_cpp

    from selfdistill.generate.llamacpp import build_sampler

    decoder, llm = backend._decoders[0], backend._llms[0]
    tokens = 0
    for start in range(0, len(requests), decoder.size):
        group = requests[start : start + decoder.size]
        prompt = backend.prompt_tokens(group[0].prompt)
        decoder._ensure(decoder.size * (len(prompt) + params.max_new_tokens + 1) + 8)
        ctx, mem = decoder._ctx.ctx, decoder._ctx.memory
        llama_cpp.llama_memory_clear(mem, True)
        chains = [build_sampler(_chain(), temp=params.temperature, top_k=params.top_k, top_p=params.top_p,
                                min_p=params.min_p, seed=r.seed) for r in group]
        decoder._decode_prompt(prompt[:-1], 0)
        for i in range(1, len(group)):
            llama_cpp.llama_memory_seq_cp(mem, 0, i, 0, len(prompt) - 1)
        last, pos, n_new = [prompt[-1]] * len(group), [len(prompt) - 1] * len(group), [0] * len(group)
        live = list(range(len(group)))
        while live:
            decoder._fill([(last[i], pos[i], i, True) for i in live])
            decoder._decode()
            keep = []
            for k, i in enumerate(live):
                last[i] = llama_cpp.llama_sampler_sample(chains[i].sampler, ctx, k)
                pos[i] += 1
                if not llama_cpp.llama_vocab_is_eog(llm._model.vocab, last[i]):
                    n_new[i] += 1
                    if n_new[i] < params.max_new_tokens:
                        keep.append(i)
            live = keep
        tokens += sum(n_new)
        for c in chains:
            c.close()
    return tokens


def _chain():
    from llama_cpp._internals import LlamaSampler

    return LlamaSampler()


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


def alternate(rounds: int, a, b) -> tuple[list[float], list[float]]:
    """Seconds per token of `a` and `b`, measured in alternation (a, b, a, b, ...), so that drift in machine
    speed (these VMs share hosts) hits both sides alike; compare medians."""
    a_spt, b_spt = [], []
    for _ in range(rounds):
        for fn, out in ((a, a_spt), (b, b_spt)):
            s, n = timed(fn)
            out.append(s / n)
    return a_spt, b_spt


def rates(spt: list[float]) -> str:
    return f"{1 / statistics.median(spt):7.1f} tok/s (median of {len(spt)}: {', '.join(f'{1 / x:.1f}' for x in spt)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=1)
    ap.add_argument("--n", type=int, default=16, help="samples per prompt = the batch size")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per comparison (medians reported)")
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    ap.add_argument("--hf", action="store_true", help="also the hf backend (its GGUF load takes ~1 min)")
    args = ap.parse_args()

    from selfdistill.generate.backends import load_backend

    model = str(default_model_path())
    requests = requests_for(args.prompts, args.n)
    params = SamplingParams(temperature=0.8, top_k=20, top_p=0.95, max_new_tokens=args.max_new_tokens)
    threads = {"n_threads": args.threads} if args.threads else {}
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; model: {model}")
    print(f"{len(requests)} requests ({args.prompts} HumanEval chat prompts x {args.n}), T={params.temperature} "
          f"top_k={params.top_k} top_p={params.top_p} max_new_tokens={params.max_new_tokens}")

    batched = load_backend("llamacpp", model, chat=True, options={"batch": args.n, **threads})
    sequential = load_backend("llamacpp", model, chat=True, options={"batch": 1, **threads})
    via_backend(sequential, requests[:1], params)
    b_spt, s_spt = alternate(args.rounds, lambda: via_backend(batched, requests, params),
                             lambda: via_backend(sequential, requests, params))
    sequential.close()
    print(f"llamacpp batch={args.n:<3} {rates(b_spt)}")
    print(f"llamacpp batch=1    {rates(s_spt)}")
    print(f"batched / sequential: {statistics.median(s_spt) / statistics.median(b_spt):.2f}x tokens/s", flush=True)

    ours, bare = alternate(args.rounds, lambda: via_backend(batched, requests, params),
                           lambda: bare_batched(batched, requests, params))
    print(f"bare llama.cpp batch  {rates(bare)}")
    print(f"selfdistill overhead over the bare batched engine: "
          f"{100 * (statistics.median(ours) / statistics.median(bare) - 1):+.1f}% seconds per token", flush=True)
    batched.close()

    if args.hf:
        backend = load_backend("hf", model, chat=True, options={"batch_size": len(requests)})
        via_backend(backend, requests[:1], params), bare_hf(backend, requests[:1], params)
        ours, bare = alternate(args.rounds, lambda: via_backend(backend, requests, params),
                               lambda: bare_hf(backend, requests, params))
        print(f"hf fp32 batch={len(requests)}  {rates(ours)}   bare {rates(bare)}   overhead "
              f"{100 * (statistics.median(ours) / statistics.median(bare) - 1):+.1f}%")
        backend.close()


if __name__ == "__main__":
    main()
