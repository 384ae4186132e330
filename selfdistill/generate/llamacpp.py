"""llama.cpp backend (llama-cpp-python): a GGUF file, CPU; up to `batch` requests decoded together per instance.

What it does:
- Samples in the paper's order, temperature -> top-k -> top-p -> min-p -> draw. llama-cpp-python's own
  chain is penalties -> top-k -> typical -> top-p -> min-p -> temperature (temperature LAST), so
  `OrderedLlama` overrides `_init_sampler`; every completion path goes through `Llama.generate`, which
  calls it. Only active stages enter the chain (`sampler_chain_names` shows it); temperature 0 is greedy.
  No repetition penalties, typical-p or mirostat: the spec has no such fields.
- Seeds: each request's own seed goes to the `dist` sampler. The context is reset before every request
  (no KV prefix reuse between requests), so a sample depends only on (prompt, seed, params), not on what
  an instance generated before; this costs one prompt evaluation per sample (~5-10% at 200-token prompts
  and 512 new tokens).
- Chat prompts are rendered with the GGUF's own `tokenizer.chat_template` (Jinja, as transformers renders
  it); BOS is prepended when the GGUF asks for it and the rendered text does not already start with it.
- `parallel=P` loads P independent model instances and runs them in P Python threads, each with
  n_threads = cores // P. llama-cpp-python calls llama.cpp through ctypes.CDLL, which releases the GIL
  for the whole native call, so the threads decode concurrently. Weights are mmapped, so instances share
  them in the page cache; each has its own KV cache (n_ctx). Measured, greedy decode on a 2-core AMD EPYC
  VM, Qwen2.5-Coder-0.5B Q4_K_M: 1 instance x 2 threads 43 tok/s; 2 instances x 1 thread 51 tok/s
  aggregate as threads, 55 as two processes (within the noise of a shared VM, so threads, which need no
  pickling or per-process start-up). With 16+ cores, expect most from parallel = cores // 4 or so.
- Warm-up: a short greedy generation per instance on load (8 tokens), so the first timed request does not
  pay for faulting in the mmapped weights and starting llama.cpp's thread pool; VMs have been seen to run
  threaded math far slower in a process's first seconds. On the 2-core VM above, the first 16 tokens of a
  fresh process already ran at 37 tok/s against 43 steady, so the warm-up costs ~0.5 s and little else.

- `lora_path`: a llama.cpp LoRA adapter GGUF (`selfdistill.train.export.export_lora_gguf`) applied to every
  instance at scale 1.0 (the adapter's own alpha / r is its scale, as in PEFT), so a LoRA-distilled model
  runs on the base file, quantized as it is. llama-cpp-python turns mmap off when an adapter is given, so
  each instance then holds its own copy of the weights in memory. describe() records the adapter's path,
  size and sha256.

- `batch=B` (default 16, the diagnostics' n): up to B requests decoded in one llama.cpp batch through the
  low-level API (`llamacpp_batch.BatchDecoder`: one context with B sequence ids and a unified KV cache, a
  prompt evaluated once and shared by `llama_memory_seq_cp` among the live sequences that have it, one
  sampler chain built by `build_sampler` and seeded per sequence); a finished sequence's slot takes the
  next request at once (continuous batching), so short samples do not wait for the longest of a group.
  With `parallel` > 1 each instance decodes groups of B requests. On 2 cores it decodes the 16 samples of a prompt at
  about twice the tokens/s of one at a time (benchmarks/bench_generate.py). `batch=1` is the sequential
  path described above. What reproduces under batching: see llamacpp_batch.py and the README.
- `set_threads(n)`: fewer threads from the next decoding step on, and back (None); the eval stage lowers it
  while its sandbox scores beside generation (evaluate.live_share). Unless `n_threads` is given, batched
  decoding also picks between 1 thread and that many from timed probes every 96 steps (`_ThreadChooser`):
  on a machine whose cores other processes share, llama.cpp's spinning threads can run 8x slower than one.

What it does not: return logprobs, or hash the model file (describe() records size and mtime; the caller
records sha256).
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from selfdistill.errors import DataError, SpecError
from selfdistill.generate.base import GenRequest, GenResult, Message, truncate_at_stop
from selfdistill.generate.llamacpp_batch import BatchDecoder
from selfdistill.generate.params import SamplingParams
from selfdistill.rundir import file_sha256

log = logging.getLogger(__name__)

OPTIONS = ("n_threads", "n_ctx", "parallel", "batch", "flash_attn", "n_batch", "verbose", "lora_path")
DEFAULT_BATCH = 16  # sequences decoded together (the diagnostics' n per problem)
WARMUP_TOKENS = 8


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _ordered_llama_class():
    """Defined lazily: importing this module must not import llama_cpp."""
    from llama_cpp import Llama
    from llama_cpp._internals import LlamaSampler

    class OrderedLlama(Llama):
        """A Llama whose sampler chain is temperature -> top-k -> top-p -> min-p -> dist(seed)."""

        def _init_sampler(self, top_k=0, top_p=1.0, min_p=0.0, temp=1.0, **_ignored):
            return build_sampler(LlamaSampler(), temp=temp, top_k=top_k, top_p=top_p, min_p=min_p, seed=self._seed)

    return OrderedLlama


def build_sampler(chain, *, temp: float, top_k: int, top_p: float, min_p: float, seed: int):
    """Fill a llama.cpp sampler chain in the paper's order; stages that are off are left out."""
    if temp <= 0:
        chain.add_greedy()
        return chain
    chain.add_temp(temp)
    if top_k > 0:
        chain.add_top_k(top_k)
    if top_p < 1.0:
        chain.add_top_p(top_p, 1)
    if min_p > 0.0:
        chain.add_min_p(min_p, 1)
    chain.add_dist(seed)
    return chain


def sampler_chain_names(chain) -> list[str]:
    """The stage names of a llama.cpp sampler chain, in order (e.g. ["temp", "top-k", "dist"]); llama.cpp's
    "?" prefix, which marks a stage that is a no-op with its settings (temp 1.0), is dropped."""
    import llama_cpp

    n = llama_cpp.llama_sampler_chain_n(chain.sampler)
    names = (llama_cpp.llama_sampler_name(llama_cpp.llama_sampler_chain_get(chain.sampler, i)) for i in range(n))
    return [name.decode().removeprefix("?") for name in names]


class LlamaCppBackend:
    name = "llamacpp"

    def __init__(
        self,
        model: str,
        *,
        chat: bool,
        n_threads: int | None = None,
        n_ctx: int = 4096,
        parallel: int = 1,
        batch: int = DEFAULT_BATCH,
        flash_attn: bool = True,
        n_batch: int = 512,
        verbose: bool = False,
        lora_path: str | None = None,
        **unknown,
    ) -> None:
        if unknown:
            raise SpecError(
                f"error: backend 'llamacpp' has no option(s) {', '.join(sorted(unknown))}; "
                f"its options are {', '.join(OPTIONS)}"
            )
        _check_positive(n_ctx=n_ctx, parallel=parallel, batch=batch, n_batch=n_batch, n_threads=n_threads or 1)
        self.path = Path(model).expanduser()
        if not self.path.is_file():
            raise DataError(f"error: model file {str(self.path)!r} does not exist (llamacpp needs a .gguf file path)")
        self.lora_path = Path(lora_path).expanduser() if lora_path else None
        if self.lora_path and not self.lora_path.is_file():
            raise DataError(
                f"error: generation.options.lora_path {str(self.lora_path)!r} does not exist; give the LoRA adapter "
                "GGUF that export_lora_gguf wrote, or remove lora_path to run the base model"
            )
        self.lora_sha256 = file_sha256(self.lora_path) if self.lora_path else None
        import llama_cpp

        self.chat = chat
        self.parallel, self.batch, self.flash_attn = parallel, batch, bool(flash_attn)
        self.n_threads = n_threads or max(1, _cores() // parallel)
        self.n_ctx, self.n_batch, self.verbose = n_ctx, n_batch, verbose
        self.engine_version = llama_cpp.__version__
        self._decoders: list[BatchDecoder] = []
        self._want_threads: int | None = None
        self._llms = [self._load() for _ in range(parallel)]
        self.chat_template = self._llms[0].metadata.get("tokenizer.chat_template")
        if chat and not self.chat_template:
            self.close()
            raise SpecError(
                f"error: chat = true but {self.path.name} has no tokenizer.chat_template in its GGUF metadata; "
                "use a GGUF with a chat template or set chat = false (plain continuation)"
            )
        self._formatter = self._chat_formatter() if self.chat_template else None
        self._decoders = [
            BatchDecoder(llm, size=batch, n_ctx=n_ctx, n_batch=n_batch, n_threads=self.n_threads,
                         flash_attn=self.flash_attn, adaptive_threads=n_threads is None)
            for llm in self._llms
        ] if batch > 1 else []
        self._warm_up()

    def _load(self):
        try:
            llm = _ordered_llama_class()(
                model_path=str(self.path), n_ctx=self.n_ctx, n_batch=self.n_batch, n_threads=self.n_threads,
                n_threads_batch=self.n_threads, verbose=self.verbose,
                lora_path=str(self.lora_path) if self.lora_path else None,
            )
        except ValueError as exc:  # llama.cpp's "Failed to load model from file"
            raise DataError(
                f"error: llama.cpp cannot load {str(self.path)!r} ({exc}); is it a valid GGUF file?"
            ) from None
        except RuntimeError as exc:  # "Failed to initialize LoRA adapter": wrong base, arch or shapes
            if not self.lora_path:
                raise
            raise DataError(
                f"error: llama.cpp cannot apply LoRA adapter {str(self.lora_path)!r} to {self.path.name} ({exc}); "
                "was it exported (export_lora_gguf) for this base GGUF?"
            ) from None
        if self.lora_path and not llm._lora_adapter:
            # llama-cpp-python 0.3.36 tests the adapter pointer with `is None`, so a NULL one (llama.cpp refused
            # the file: wrong arch, tensor names or shapes) slips through and decoding later segfaults
            llm.close()
            raise DataError(
                f"error: llama.cpp refused LoRA adapter {str(self.lora_path)!r} for {self.path.name} (run with "
                "verbose = true for its reason); was it exported (export_lora_gguf) for this base GGUF?"
            )
        return llm

    def _warm_up(self) -> None:
        start = time.perf_counter()
        for llm in self._llms:
            llm.reset()
            llm.create_completion(llm.tokenize(b"def", add_bos=True), max_tokens=WARMUP_TOKENS, temperature=0.0)
        greedy = SamplingParams(temperature=0.0, max_new_tokens=WARMUP_TOKENS)
        for decoder in self._decoders:
            tokens = decoder.llm.tokenize(b"def", add_bos=True)
            list(decoder.decode([(GenRequest("warm-up", i, "def", 1), tokens) for i in range(2)], greedy))
        log.info("llamacpp: %d instance(s) x %d threads (batch %d) warmed up in %.1fs",
                 self.parallel, self.n_threads, self.batch, time.perf_counter() - start)

    def set_threads(self, n_threads: int | None) -> None:
        """Threads per instance from the next decoding step on (None: back to the configured n_threads); callable
        from any thread: the eval stage lowers it while the sandbox scores beside generation (evaluate.py), since
        llama.cpp's threads spin-wait for each other at every step and collapse when a core is taken."""
        want = max(1, min(n_threads, self.n_threads)) if n_threads else self.n_threads
        self._want_threads = want
        for decoder in self._decoders:
            decoder.want_threads = want

    def _apply_threads(self, llm) -> None:
        import llama_cpp

        want = self._want_threads or self.n_threads
        if getattr(llm, "_selfdistill_threads", self.n_threads) != want:
            llama_cpp.llama_set_n_threads(llm.ctx, want, want)
            llm._selfdistill_threads = want

    # prompts ---------------------------------------------------------------------------------------

    def render_prompt(self, prompt: str | Sequence[Message]) -> str:
        """The text the model sees: a plain string as is, chat messages through the GGUF's template."""
        if isinstance(prompt, str):
            return prompt
        if not self.chat_template:
            raise SpecError(
                f"error: a request has chat messages but {self.path.name} has no chat template; "
                "give plain string prompts or use a GGUF with tokenizer.chat_template"
            )
        return self._formatter(messages=[dict(m) for m in prompt]).prompt

    def _chat_formatter(self):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = self._llms[0]
        return Jinja2ChatFormatter(
            template=self.chat_template, eos_token=_token_text(llm, llm.token_eos()),
            bos_token=_token_text(llm, llm.token_bos()), add_generation_prompt=True,
        )

    def prompt_tokens(self, prompt: str | Sequence[Message], llm=None) -> list[int]:
        """The prompt's token ids (what `prompt_tokens` in a result counts); `llm`: the instance to use."""
        llm = llm or self._llms[0]
        tokens = llm.tokenize(self.render_prompt(prompt).encode("utf-8"), add_bos=False, special=True)
        bos = llm.token_bos()
        if llm._model.add_bos_token() and bos >= 0 and tokens[:1] != [bos]:
            tokens = [bos, *tokens]
        return tokens

    # generation ------------------------------------------------------------------------------------

    def _checked_tokens(self, request: GenRequest, llm) -> list[int]:
        tokens = self.prompt_tokens(request.prompt, llm)
        if len(tokens) >= self.n_ctx:
            raise SpecError(
                f"error: the prompt of {request.task_id} is {len(tokens)} tokens, over llamacpp n_ctx={self.n_ctx}; "
                "raise generation.options.n_ctx"
            )
        return tokens

    def _one(self, llm, request: GenRequest, params: SamplingParams) -> GenResult:
        tokens = self._checked_tokens(request, llm)
        self._apply_threads(llm)
        self._prime(llm, tokens)
        out = llm.create_completion(
            tokens, max_tokens=params.max_new_tokens, temperature=params.temperature, top_k=params.top_k,
            top_p=params.top_p, min_p=params.min_p, seed=request.seed, stop=list(params.stop),
            repeat_penalty=1.0,
        )
        choice = out["choices"][0]
        text, stopped = truncate_at_stop(choice["text"], params.stop)
        return GenResult(
            task_id=request.task_id, sample_idx=request.sample_idx, seed=request.seed, text=text,
            finish_reason="stop" if stopped else choice["finish_reason"],
            completion_tokens=out["usage"]["completion_tokens"], prompt_tokens=out["usage"]["prompt_tokens"],
        )

    @staticmethod
    def _prime(llm, tokens: list[int]) -> None:
        """Put exactly `tokens[:-1]` in the KV cache, computed from a reset context, unless this instance
        already holds that prefix (an earlier sample of the same prompt). create_completion then reuses it
        and evaluates the last prompt token alone. Every sample of a prompt takes this same path, whether
        first or sixteenth, so its text depends only on (prompt, seed), while the prompt is evaluated once
        per instance instead of once per sample (n = 16 samples share one prompt evaluation)."""
        prefix = tokens[:-1]
        if llm.n_tokens < len(prefix) or llm._input_ids[: len(prefix)].tolist() != prefix:
            llm.reset()
            llm.eval(prefix)

    def generate(self, requests: Sequence[GenRequest], params: SamplingParams) -> Iterator[GenResult]:
        if params.max_new_tokens >= self.n_ctx:
            log.warning("llamacpp: max_new_tokens=%d >= n_ctx=%d; completions end early, at the context limit",
                        params.max_new_tokens, self.n_ctx)
        if self._decoders and self.parallel == 1:  # one stream: a finished sequence's slot takes the next request
            items = [(request, self._checked_tokens(request, self._llms[0])) for request in requests]
            yield from self._decoders[0].decode(items, params)
            return
        size = max(1, self.batch)
        units = [list(requests[i : i + size]) for i in range(0, len(requests), size)]
        if self.parallel == 1 or len(units) <= 1:
            for unit in units:
                yield from self._run(0, unit, params)
            return
        yield from self._generate_threads(units, params)

    def _run(self, slot: int, unit: list[GenRequest], params: SamplingParams) -> list[GenResult]:
        """One unit of work on instance `slot`: a request alone (batch 1) or `batch` requests decoded together."""
        llm = self._llms[slot]
        if not self._decoders:
            return [self._one(llm, request, params) for request in unit]
        return list(self._decoders[slot].decode([(r, self._checked_tokens(r, llm)) for r in unit], params))

    def _generate_threads(self, units: list[list[GenRequest]], params: SamplingParams) -> Iterator[GenResult]:
        idle: queue.Queue = queue.Queue()
        for slot in range(len(self._llms)):
            idle.put(slot)

        def work(unit: list[GenRequest]) -> list[GenResult]:
            slot = idle.get()
            try:
                return self._run(slot, unit, params)
            finally:
                idle.put(slot)

        pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="llamacpp")
        try:
            pending = {pool.submit(work, u) for u in units}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield from future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def describe(self) -> dict:
        stat = self.path.stat()
        template = self.chat_template or ""
        return {
            "backend": self.name,
            "model": str(self.path.resolve()),
            "model_size_bytes": stat.st_size,
            "model_mtime": stat.st_mtime,
            "engine": "llama-cpp-python",
            "engine_version": self.engine_version,
            "chat": self.chat,
            "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest() if template else None,
            "n_threads": self.n_threads,
            "threads_adaptive": bool(self._decoders and self._decoders[0].threads),
            "parallel": self.parallel,
            "batch": self.batch,
            "batch_decoding": ("up to batch requests decoded together, a finished one's slot taken by the next in "
                               "order; a prompt evaluated once and its KV shared; "
                               "one sampler chain and seed per sequence")
            if self.batch > 1 else "one sequence at a time",
            "flash_attn_batch": self.flash_attn if self.batch > 1 else None,
            "n_ctx": self.n_ctx,
            "n_batch": self.n_batch,
            "sampler_order": ["temperature", "top_k", "top_p", "min_p", "dist"],
            "prefix_cache": False,
            "lora_path": str(self.lora_path.resolve()) if self.lora_path else None,
            "lora_size_bytes": self.lora_path.stat().st_size if self.lora_path else None,
            "lora_sha256": self.lora_sha256,
        }

    def close(self) -> None:
        for decoder in self._decoders:
            decoder.close()
        self._decoders = []
        for llm in self._llms:
            llm.close()
        self._llms = []




def _token_text(llm, token: int) -> str:
    return llm._model.token_get_text(token) if token >= 0 else ""


def _check_positive(**values: int) -> None:
    bad = [f"{k}={v!r}" for k, v in values.items() if not isinstance(v, int) or isinstance(v, bool) or v < 1]
    if bad:
        raise SpecError(f"error: llamacpp option(s) {', '.join(bad)} must be integers >= 1")
