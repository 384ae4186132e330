"""Batched multi-sample decoding on llama.cpp: up to B sequences advanced by one `llama_decode` per step.

What it does (for `LlamaCppBackend` with `batch` > 1):
- B slots share one llama.cpp context with B sequence ids and one unified KV cache. Requests enter the
  slots in the order given (the eval stage lists the n samples of a problem together), and a sequence
  that finishes gives its slot to the next request at once (continuous batching), so the samples of a
  problem do not wait for the longest one before the next problem starts. A request's prompt minus its
  last token goes into the cache once: copied (`llama_memory_seq_cp`; in a unified cache a copy shares the
  cells) from a live sequence with the same prompt, or else evaluated; its last token enters the next
  step's batch, whose logits give the first sampled token. Every step puts one token per live sequence
  into a single batch: the weights are read once per step for all of them, which is what makes it faster
  on a CPU (memory-bound decode turns into small matrix products).
- Each sequence has its OWN sampler chain, built by `build_sampler` in the paper's order (temperature ->
  top-k -> top-p -> min-p -> dist), seeded with the request's own seed; the seed is returned with the
  sample as before.
- Per sequence: end-of-generation tokens and stop strings end it with finish_reason "stop" (the stop
  string and what follows are cut), `max_new_tokens` or the per-sequence context (`n_ctx`) with "length";
  its result is yielded at once and its cells freed (`llama_memory_seq_rm`), the others go on.

Reproducibility: a sample is a function of (prompt, seed, params, and the sequences it was decoded
beside). The schedule is deterministic, so the same request list with the same `batch` reproduces every
sample exactly (same machine and build); a request decoded beside other sequences (another `batch`, a
resumed run whose remaining requests are scheduled differently) gets logits that differ in the last
float bits (matrix products of another shape sum in another order), so its text can differ from the
uninterrupted run's while being an equally valid, independent draw from the same distribution with its
own recorded seed.

What it does not: share prefixes between different prompts, logprobs, speculative decoding.
"""

from __future__ import annotations

import ctypes
import statistics
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from selfdistill.generate.base import GenRequest, GenResult
from selfdistill.generate.params import SamplingParams

KV_ROUND = 1024  # the batch context's KV size grows in steps of this many cells


@dataclass
class _Seq:
    seq_id: int
    request: GenRequest
    prompt: list[int]
    sampler: object
    tokens: list[int] = field(default_factory=list)
    pieces: bytearray = field(default_factory=bytearray)
    pending: int | None = None  # the sampled token that has yet to go through llama_decode
    finish: str | None = None
    cut: str | None = None  # the text before a stop string, once one appeared


class BatchDecoder:
    """One llama.cpp context for up to `size` sequences, decoding groups of requests on a loaded Llama."""

    def __init__(self, llm, *, size: int, n_ctx: int, n_batch: int, n_threads: int, flash_attn: bool = True,
                 adaptive_threads: bool = False) -> None:
        self.llm, self.size, self.n_ctx = llm, size, n_ctx
        self.n_batch = max(n_batch, size)
        self.n_threads = self.want_threads = n_threads  # want_threads: set from any thread, applied at the next step
        self.threads = _ThreadChooser() if adaptive_threads else None
        self.flash_attn = flash_attn
        self._ctx = None
        self._kv_cells = 0
        self._batch = None
        self._buf = ctypes.create_string_buffer(256)

    # context --------------------------------------------------------------------------------------------

    def _ensure(self, cells: int) -> None:
        """A context whose unified KV cache holds `cells` cells (re-created larger when a group needs more)."""
        if self._ctx is not None and cells <= self._kv_cells:
            return
        import llama_cpp
        from llama_cpp._internals import LlamaBatch, LlamaContext

        self.close()
        self._kv_cells = -(-cells // KV_ROUND) * KV_ROUND
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = self._kv_cells
        params.n_batch = params.n_ubatch = self.n_batch
        params.n_seq_max = self.size
        params.kv_unified = True
        params.n_threads = params.n_threads_batch = self.n_threads
        params.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if self.flash_attn
                                  else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        params.no_perf = True
        self._ctx = LlamaContext(model=self.llm._model, params=params, verbose=False)
        self._batch = LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=1, verbose=False)
        adapter = getattr(self.llm, "_lora_adapter", None)
        if adapter:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(1.0)
            if llama_cpp.llama_set_adapters_lora(self._ctx.ctx, adapters, 1, scales):
                raise RuntimeError("llama.cpp could not set the LoRA adapter on the batch context")


    def close(self) -> None:
        if self._batch is not None:
            self._batch.close()
        if self._ctx is not None:
            self._ctx.close()
        self._ctx = self._batch = None

    # decoding -------------------------------------------------------------------------------------------

    def decode(self, items: Sequence[tuple[GenRequest, list[int]]], params: SamplingParams) -> Iterator[GenResult]:
        """Decode every (request, prompt tokens) of `items`, at most `size` at a time, yielding each result as
        its sequence finishes: a finished sequence's slot goes at once to the next request in order."""
        import llama_cpp

        if not items:
            return
        longest = max(len(tokens) for _, tokens in items)
        self._ensure(self.size * (longest + params.max_new_tokens + 1) + 8)
        llama_cpp.llama_memory_clear(self._ctx.memory, True)
        waiting, slots = deque(items), [None] * self.size
        try:
            while waiting or any(slots):
                self._admit(waiting, slots, params)
                active = [s for s in slots if s is not None]
                self._fill([(s.pending, len(s.prompt) + len(s.tokens) - 1, s.seq_id, True) for s in active])
                self._decode(step=True)
                for out, s in enumerate(active):
                    self._accept(s, llama_cpp.llama_sampler_sample(s.sampler.sampler, self._ctx.ctx, out), params)
                    if s.finish is not None:
                        slots[s.seq_id] = None
                        self._release(s)
                        yield self._result(s)
        finally:
            for s in slots:
                if s is not None:
                    self._release(s)

    def _admit(self, waiting: deque, slots: list, params: SamplingParams) -> None:
        """Fill free slots with the next requests: the prompt minus its last token put in the KV cache, shared
        from a live sequence with the same prompt (`llama_memory_seq_cp`) or else evaluated once; the last
        prompt token then goes into the next step's batch, so its logits give the first sampled token."""
        import llama_cpp

        from selfdistill.generate.llamacpp import build_sampler

        for seq_id in range(self.size):
            if slots[seq_id] is not None or not waiting:
                continue
            request, tokens = waiting.popleft()
            sampler = build_sampler(_new_chain(), temp=params.temperature, top_k=params.top_k, top_p=params.top_p,
                                    min_p=params.min_p, seed=request.seed)
            s = _Seq(seq_id, request, tokens, sampler, pending=tokens[-1])
            donor = next((o for o in slots if o is not None and o.prompt == tokens), None)
            if donor is not None:
                llama_cpp.llama_memory_seq_cp(self._ctx.memory, donor.seq_id, seq_id, 0, len(tokens) - 1)
            elif len(tokens) > 1:
                self._decode_prompt(tokens[:-1], seq_id)
            slots[seq_id] = s

    def _release(self, s: _Seq) -> None:
        import llama_cpp

        llama_cpp.llama_memory_seq_rm(self._ctx.memory, s.seq_id, -1, -1)  # shared prompt cells stay for others
        s.sampler.close()

    def _decode_prompt(self, tokens: list[int], seq_id: int) -> None:
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start : start + self.n_batch]
            self._fill([(t, start + k, seq_id, False) for k, t in enumerate(chunk)])
            self._decode()

    def _fill(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """Load (token, position, seq_id, wants logits) entries into the batch."""
        b = self._batch.batch
        b.n_tokens = len(entries)
        for k, (token, pos, seq_id, logits) in enumerate(entries):
            b.token[k], b.pos[k], b.n_seq_id[k], b.logits[k] = token, pos, 1, logits
            b.seq_id[k][0] = seq_id

    def _decode(self, step: bool = False) -> None:
        import llama_cpp

        n = self.threads.next(self.want_threads) if step and self.threads else self.want_threads
        if n != self.n_threads:  # applied here, in the decoding thread, between steps
            self.n_threads = n
            llama_cpp.llama_set_n_threads(self._ctx.ctx, n, n)
        t0 = time.perf_counter()
        rc = llama_cpp.llama_decode(self._ctx.ctx, self._batch.batch)
        if step and self.threads:
            self.threads.record(n, (time.perf_counter() - t0) / self._batch.batch.n_tokens)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed ({rc}) with {self._kv_cells} KV cells for {self.size} sequences")

    def _accept(self, s: _Seq, token: int, params: SamplingParams) -> None:
        import llama_cpp

        vocab = self.llm._model.vocab
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            s.finish = "stop"
            return
        s.tokens.append(token)
        s.pieces += self._piece(vocab, token)
        if params.stop:
            from selfdistill.generate.base import truncate_at_stop

            text, stopped = truncate_at_stop(s.pieces.decode("utf-8", errors="ignore"), params.stop)
            if stopped:
                s.finish, s.cut = "stop", text
                return
        if len(s.tokens) >= params.max_new_tokens or len(s.prompt) + len(s.tokens) >= self.n_ctx:
            s.finish = "length"
            return
        s.pending = token

    def _piece(self, vocab, token: int) -> bytes:
        """The token's text bytes (llama_token_to_piece, special tokens not rendered), as detokenize builds them."""
        import llama_cpp

        n = llama_cpp.llama_token_to_piece(vocab, token, self._buf, len(self._buf), 0, False)
        return bytes(self._buf[:n]) if n >= 0 else b""

    @staticmethod
    def _result(s: _Seq) -> GenResult:
        text = s.cut if s.cut is not None else s.pieces.decode("utf-8", errors="ignore")
        r = s.request
        return GenResult(task_id=r.task_id, sample_idx=r.sample_idx, seed=r.seed, text=text, finish_reason=s.finish,
                         completion_tokens=len(s.tokens), prompt_tokens=len(s.prompt))


class _ThreadChooser:
    """Adaptive thread count for decoding steps, for machines whose cores are shared with other work.

    llama.cpp's threads meet at a spinning barrier after every operation of a step, so when another process
    takes the core of one of them, all wait: on a loaded 2-core machine one thread has decoded 8x faster
    than two, while on an idle one two are faster. So every CYCLE steps, PROBE steps run with 1 thread and
    PROBE with the allowed count, and the rest of the cycle uses whichever took less time per token (median).
    Costs a few percent where the allowed count is the better one; a thread count never changes a sample."""

    CYCLE, PROBE = 96, 6

    def __init__(self) -> None:
        self._step, self._best = 0, None
        self._times: dict[int, list[float]] = {}

    def next(self, cap: int) -> int:
        if cap <= 1:
            return max(1, cap)
        phase = self._step % self.CYCLE
        self._step += 1
        if phase == 0:
            self._times = {}
        if phase < self.PROBE:
            return 1
        if phase < 2 * self.PROBE:
            return cap
        if phase == 2 * self.PROBE or self._best is None:
            one, many = (statistics.median(self._times.get(n) or [float("inf")]) for n in (1, cap))
            self._best = 1 if one < many else cap
        return self._best if self._best <= cap else cap

    def record(self, n: int, seconds_per_token: float) -> None:
        self._times.setdefault(n, []).append(seconds_per_token)


def _new_chain():
    from llama_cpp._internals import LlamaSampler

    return LlamaSampler()

