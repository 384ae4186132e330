"""transformers backend: batched generation on CPU or GPU, with each sample drawn from its own seed.

What it does:
- Loads a local directory, a hub id, or a `.gguf` file (through transformers' `gguf_file=`, dequantized
  to `dtype`). The model's saved `generation_config` is replaced by one holding only its EOS/PAD ids:
  transformers would otherwise fill every unset field from it and then from global defaults (top_k=50,
  a model's repetition_penalty, ...). What was dropped is recorded by describe().
- Samples in the paper's order: transformers' own Temperature -> TopK -> TopP -> MinP warpers, built
  explicitly by `ordered_warpers` (stages that are off are left out), then a draw.
- Seeds: `generate()` runs in greedy mode with `SeededSampler` as its last logits processor. It applies the
  warpers, draws row i's token with row i's own `torch.Generator` (seeded with that request's seed), and
  returns a one-hot score so greedy selection picks the drawn token. A batch-wide generator would make a
  sample depend on its batch-mates; here a sample depends only on (prompt, seed, params). On CPU fp32 the
  same sample comes out alone or in a batch (tested); on GPU, batch shape can still move logits by an ulp.
- Batches requests (left padding), longest prompts first; chat prompts go through the tokenizer's own
  `apply_chat_template(add_generation_prompt=True)`; stop strings end a row and are cut from its text.
- Text is decoded as it continues the prompt (a SentencePiece leading space is kept), without special
  tokens (as llama.cpp does) and without clean-up of spaces.

What it does not: beam search, logprobs, speculative decoding, multi-GPU placement.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

from selfdistill.errors import DataError, SpecError
from selfdistill.generate.base import GenRequest, GenResult, Message, truncate_at_stop
from selfdistill.generate.params import SamplingParams

log = logging.getLogger(__name__)

OPTIONS = ("device", "dtype", "batch_size", "trust_remote_code")
DEVICES = ("cpu", "cuda", "auto")
DTYPES = ("float32", "bfloat16", "float16", "auto")
# generation_config fields that do not change what is sampled (left out of describe()'s "ignored" record)
NOT_SAMPLING = {"eos_token_id", "pad_token_id", "bos_token_id", "transformers_version", "use_cache",
                "output_attentions", "output_hidden_states", "return_dict_in_generate"}


def ordered_warpers(params: SamplingParams) -> list:
    """transformers warpers in the paper's order: temperature -> top-k -> top-p -> min-p (active ones only)."""
    from transformers import (
        MinPLogitsWarper,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    warpers = [TemperatureLogitsWarper(params.temperature)]
    if params.top_k > 0:
        warpers.append(TopKLogitsWarper(top_k=params.top_k))
    if params.top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p=params.top_p))
    if params.min_p > 0.0:
        warpers.append(MinPLogitsWarper(min_p=params.min_p))
    return warpers


def _seeded_sampler(warpers: list, seeds: Sequence[int], device):
    import torch
    from transformers import LogitsProcessor

    class SeededSampler(LogitsProcessor):
        """Warp, then draw row i with generator i; return scores whose argmax is the drawn token."""

        def __init__(self) -> None:
            self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]

        def __call__(self, input_ids, scores):
            scores = scores.float()
            for warper in warpers:
                scores = warper(input_ids, scores)
            probs = torch.softmax(scores, dim=-1)
            picks = torch.cat([torch.multinomial(p, 1, generator=g)
                               for p, g in zip(probs, self.generators, strict=True)])
            onehot = torch.full_like(scores, float("-inf"))
            onehot[torch.arange(len(picks), device=scores.device), picks] = 0.0
            return onehot

    return SeededSampler()


def _stop_criteria(tokenizer, stop: Sequence[str], prompt_len: int):
    import torch
    from transformers import StoppingCriteria

    window = 4 * max(len(s) for s in stop) + 4  # a character is at most 4 byte-level tokens

    class StopStrings(StoppingCriteria):
        """Marks a row done once its completion's tail contains a stop string; remembers at which token."""

        def __init__(self) -> None:
            self.stopped_at: dict[int, int] = {}

        def __call__(self, input_ids, scores, **kwargs):
            n_new = input_ids.shape[1] - prompt_len
            done = []
            for i, row in enumerate(input_ids):
                if i not in self.stopped_at:
                    start = max(prompt_len, input_ids.shape[1] - window)
                    tail = tokenizer.decode(row[start:], skip_special_tokens=True)
                    if any(s in tail for s in stop):
                        self.stopped_at[i] = n_new
                done.append(i in self.stopped_at)
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StopStrings()


class HFBackend:
    name = "hf"

    def __init__(
        self,
        model: str,
        *,
        chat: bool,
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 8,
        trust_remote_code: bool = False,
        **unknown,
    ) -> None:
        _check_options(unknown, device, dtype, batch_size)
        import torch

        self.model_ref, self.chat, self.batch_size = model, chat, batch_size
        self.source, self.gguf_file = _resolve_source(model)
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        if self.device == "cuda" and not torch.cuda.is_available():
            raise SpecError(
                "error: hf option device = 'cuda' but torch sees no CUDA device; use device = 'cpu' or 'auto'"
            )
        self.tokenizer, self.model = self._load(dtype, trust_remote_code)
        self.chat_template = getattr(self.tokenizer, "chat_template", None)
        if chat and not self.chat_template:
            raise SpecError(
                f"error: chat = true but the tokenizer of {model!r} has no chat template; "
                "use an instruct model with a chat template or set chat = false (plain continuation)"
            )
        self.eos_ids, self.pad_id, self.ignored_generation_config = self._own_generation_config()
        self._warm_up()

    def _load(self, dtype: str, trust_remote_code: bool):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kw = {"trust_remote_code": trust_remote_code}
        if self.gguf_file:
            kw["gguf_file"] = self.gguf_file
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.source, **kw)
            model = AutoModelForCausalLM.from_pretrained(self.source, dtype=torch_dtype, **kw)
        except (OSError, ValueError) as exc:
            raise DataError(f"error: transformers cannot load model {self.model_ref!r}: {exc}") from None
        return tokenizer, model.to(self.device).eval()

    def _own_generation_config(self) -> tuple[list[int], int, dict]:
        """Replace the model's generation_config with EOS/PAD only; return (eos ids, pad id, what was dropped)."""
        from transformers import GenerationConfig

        saved = self.model.generation_config
        eos = saved.eos_token_id if saved.eos_token_id is not None else self.tokenizer.eos_token_id
        eos_ids = sorted({*(eos if isinstance(eos, list) else [eos]), self.tokenizer.eos_token_id} - {None})
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos_ids[0]
        dropped = {k: v for k, v in saved.to_diff_dict().items() if k not in NOT_SAMPLING and not k.startswith("_")}
        self.model.generation_config = GenerationConfig(eos_token_id=eos_ids, pad_token_id=pad)
        return eos_ids, pad, dropped

    def _warm_up(self) -> None:
        """One short greedy generation, so the first timed batch does not pay for thread-pool start-up."""
        ids = self.prompt_tokens("def")
        list(self._batch([GenRequest("warmup", 0, "def", 1)], [ids], SamplingParams(temperature=0, max_new_tokens=2)))

    # prompts ---------------------------------------------------------------------------------------

    def render_prompt(self, prompt: str | Sequence[Message]) -> str:
        """The text the model sees: a plain string as is, chat messages through the tokenizer's template."""
        if isinstance(prompt, str):
            return prompt
        if not self.chat_template:
            raise SpecError(
                f"error: a request has chat messages but the tokenizer of {self.model_ref!r} has no chat template; "
                "give plain string prompts or use a model with a chat template"
            )
        return self.tokenizer.apply_chat_template([dict(m) for m in prompt], add_generation_prompt=True, tokenize=False)

    def prompt_tokens(self, prompt: str | Sequence[Message]) -> list[int]:
        # a chat template writes its own special tokens (as apply_chat_template(tokenize=True) does)
        special = isinstance(prompt, str)
        return self.tokenizer(self.render_prompt(prompt), add_special_tokens=special)["input_ids"]

    # generation ------------------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenRequest], params: SamplingParams) -> Iterator[GenResult]:
        encoded = sorted(((r, self.prompt_tokens(r.prompt)) for r in requests), key=lambda e: -len(e[1]))
        for start in range(0, len(encoded), self.batch_size):
            chunk = encoded[start : start + self.batch_size]
            yield from self._batch([r for r, _ in chunk], [ids for _, ids in chunk], params)

    def _batch(
        self, requests: list[GenRequest], prompts: list[list[int]], params: SamplingParams
    ) -> Iterator[GenResult]:
        import torch
        from transformers import (
            GenerationConfig,
            LogitsProcessorList,
            StoppingCriteriaList,
        )

        width = max(len(p) for p in prompts)
        input_ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        processors = [] if params.greedy else [
            _seeded_sampler(ordered_warpers(params), [r.seed for r in requests], self.device)
        ]
        stops = _stop_criteria(self.tokenizer, params.stop, width) if params.stop else None
        config = GenerationConfig(do_sample=False, max_new_tokens=params.max_new_tokens,
                                  eos_token_id=self.eos_ids, pad_token_id=self.pad_id)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids, attention_mask=mask, generation_config=config,
                logits_processor=LogitsProcessorList(processors),
                stopping_criteria=StoppingCriteriaList([stops] if stops else []),
            )
        for i, (request, prompt) in enumerate(zip(requests, prompts, strict=True)):
            new = out[i, width:].tolist()
            if stops and i in stops.stopped_at:
                new = new[: stops.stopped_at[i]]
            yield self._result(request, prompt, new, params)

    def _decode_after(self, prompt: list[int], tokens: list[int]) -> str:
        """The completion's text as it continues the prompt. Decoding it alone would lose a SentencePiece
        leading space ("▁def" at the start of a sequence decodes to "def"), so decode it after the
        prompt's last tokens and keep what they add."""
        def decode(ids: list[int]) -> str:
            return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

        context = prompt[-4:]
        before, full = decode(context), decode(context + tokens)
        return full[len(before):] if full.startswith(before) else decode(tokens)

    def _result(self, request: GenRequest, prompt: list[int], new: list[int], params: SamplingParams) -> GenResult:
        ended = next((j for j, t in enumerate(new) if t in self.eos_ids), None)
        tokens = new if ended is None else new[:ended]
        text = self._decode_after(prompt, tokens)
        text, stopped = truncate_at_stop(text, params.stop)
        finish = "stop" if stopped or ended is not None else "length"
        return GenResult(
            task_id=request.task_id, sample_idx=request.sample_idx, seed=request.seed, text=text,
            finish_reason=finish, completion_tokens=len(tokens), prompt_tokens=len(prompt),
        )

    def describe(self) -> dict:
        import torch
        import transformers

        template = self.chat_template or ""
        return {
            "backend": self.name,
            "model": self.model_ref,
            "source": self.source,
            "gguf_file": self.gguf_file,
            "engine": "transformers",
            "engine_version": transformers.__version__,
            "torch_version": torch.__version__,
            "device": self.device,
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "torch_threads": torch.get_num_threads(),
            "batch_size": self.batch_size,
            "chat": self.chat,
            "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest() if template else None,
            "eos_token_ids": self.eos_ids,
            "ignored_generation_config": self.ignored_generation_config,
            "sampler_order": ["temperature", "top_k", "top_p", "min_p", "sample"],
        }

    def close(self) -> None:
        self.model = None
        if self.device == "cuda":
            import torch

            torch.cuda.empty_cache()


def _resolve_source(model: str) -> tuple[str, str | None]:
    """(directory or hub id, gguf file name or None). A path that looks local must exist."""
    path = Path(model).expanduser()
    if model.endswith(".gguf"):
        if not path.is_file():
            raise DataError(f"error: model file {str(path)!r} does not exist")
        return str(path.parent.resolve()), path.name
    if path.is_dir():
        return str(path.resolve()), None
    if model.startswith(("/", "./", "../", "~")) or path.exists():
        raise DataError(
            f"error: model directory {str(path)!r} does not exist (give a model directory, a hub id or a .gguf file)"
        )
    return model, None  # a hub id


def _check_options(unknown: dict, device: str, dtype: str, batch_size: int) -> None:
    problems = []
    if unknown:
        names = ", ".join(sorted(unknown))
        problems.append(f"backend 'hf' has no option(s) {names}; its options are {', '.join(OPTIONS)}")
    if device not in DEVICES:
        problems.append(f"hf option device={device!r} must be one of {', '.join(DEVICES)}")
    if dtype not in DTYPES:
        problems.append(f"hf option dtype={dtype!r} must be one of {', '.join(DTYPES)}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        problems.append(f"hf option batch_size={batch_size!r} must be an integer >= 1")
    if problems:
        raise SpecError("error: " + "; ".join(problems))
