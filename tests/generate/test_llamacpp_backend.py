"""LlamaCppBackend on a tiny random llama GGUF: seeds, the paper's sampler order, stops, chat template, errors,
one sequence at a time (batch 1); tests/generate/test_llamacpp_batch.py covers batched decoding."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("llama_cpp")

import llama_cpp
from llama_cpp._internals import LlamaSampler

from selfdistill.errors import DataError, SpecError
from selfdistill.generate.backends import load_backend
from selfdistill.generate.base import GenRequest
from selfdistill.generate.llamacpp import (
    LlamaCppBackend,
    build_sampler,
    sampler_chain_names,
)
from selfdistill.generate.params import SamplingParams

PROMPT = "def f(x):"
CHAT = ({"role": "system", "content": "be brief"}, {"role": "user", "content": "add one"})


@pytest.fixture(scope="module")
def backend(tiny_gguf):
    b = LlamaCppBackend(str(tiny_gguf), chat=True, n_ctx=512, n_threads=1, batch=1)  # one sequence at a time
    yield b
    b.close()


@pytest.fixture(scope="module")
def plain_llama(tiny_gguf):
    """The engine without our backend: a reference for argmax decoding and raw logits."""
    llm = llama_cpp.Llama(model_path=str(tiny_gguf), n_ctx=512, n_threads=1, verbose=False)
    yield llm
    llm.close()


def one(backend, params, seed=1, prompt=PROMPT, idx=0):
    [result] = backend.generate([GenRequest("t/0", idx, prompt, seed)], params)
    return result


def last_logits(llm, tokens):
    llm.reset()
    llm.eval(tokens)
    return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),)).copy()


def argmax_decode(llm, tokens, n):
    out = []
    for _ in range(n):
        t = int(np.argmax(last_logits(llm, tokens + out)))
        if t == llm.token_eos():
            break
        out.append(t)
    return out


def test_same_seed_same_text_and_different_seeds_differ(backend):
    params = SamplingParams(temperature=1.0, max_new_tokens=24)
    assert one(backend, params, seed=11) == one(backend, params, seed=11)
    texts = {one(backend, params, seed=s).text for s in range(1, 7)}
    assert len(texts) >= 5


def test_sample_does_not_depend_on_what_the_instance_did_before(tiny_gguf, backend):
    params = SamplingParams(temperature=0.9, top_p=0.95, max_new_tokens=24)
    before = one(backend, params, seed=5)
    one(backend, params, seed=6, prompt=CHAT)  # fills the KV cache with another prompt
    one(backend, params, seed=7)  # ... and with the same prompt, another continuation
    assert one(backend, params, seed=5) == before


def test_prompt_prefix_is_evaluated_once_per_prompt_not_once_per_sample(backend, monkeypatch):
    llm = backend._llms[0]
    evaluated = []
    real_eval = llm.eval
    monkeypatch.setattr(llm, "eval", lambda tokens: (evaluated.append(len(tokens)), real_eval(tokens))[1])
    params = SamplingParams(temperature=0.9, max_new_tokens=8)
    one(backend, params, seed=1, prompt=CHAT)  # another prompt first
    evaluated.clear()
    for seed in (11, 12, 13):
        one(backend, params, seed=seed)
    prefix = len(backend.prompt_tokens(PROMPT)) - 1
    assert evaluated.count(prefix) == 1  # primed once for three samples
    assert sum(evaluated) < prefix + 3 * (1 + 8)  # then only the last prompt token and the new tokens


def test_greedy_is_argmax_decoding(backend, plain_llama):
    result = one(backend, SamplingParams(temperature=0.0, max_new_tokens=20))
    prompt = backend.prompt_tokens(PROMPT)
    tokens = argmax_decode(plain_llama, prompt, 20)
    assert result.text == plain_llama.detokenize(tokens, prev_tokens=prompt).decode("utf-8", errors="ignore")
    assert result.completion_tokens == len(tokens) and result.prompt_tokens == len(prompt)


@pytest.mark.parametrize("temperature", [0.7, 1.5, 4.0])
def test_top_k_1_is_greedy_at_any_temperature(backend, temperature):
    greedy = one(backend, SamplingParams(temperature=0.0, max_new_tokens=20)).text
    assert one(backend, SamplingParams(temperature=temperature, top_k=1, max_new_tokens=20), seed=99).text == greedy


def test_sampler_chain_is_in_the_papers_order(backend):
    chain = build_sampler(LlamaSampler(), temp=0.6, top_k=20, top_p=0.95, min_p=0.05, seed=3)
    assert sampler_chain_names(chain) == ["temp", "top-k", "top-p", "min-p", "dist"]
    # and the chain that actually ran (llama-cpp-python's default puts temp after min-p)
    one(backend, SamplingParams(temperature=1.3, top_k=20, top_p=0.8, min_p=0.01, max_new_tokens=2))
    assert sampler_chain_names(backend._llms[0]._sampler) == ["temp", "top-k", "top-p", "min-p", "dist"]
    assert sampler_chain_names(build_sampler(LlamaSampler(), temp=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=3)) == [
        "temp", "dist"]
    assert sampler_chain_names(build_sampler(LlamaSampler(), temp=0.0, top_k=5, top_p=0.5, min_p=0.1, seed=3)) == [
        "greedy"]


def _top_p_support(logits, p):
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    order = np.argsort(-probs)
    n_keep = int(np.searchsorted(np.cumsum(probs[order]), p) + 1)  # smallest head with mass >= p
    return set(order[:n_keep].tolist())


def test_temperature_is_applied_before_top_p(backend, plain_llama):
    """A hot temperature first flattens the distribution, so top-p keeps many tokens; top-p on the raw
    logits (temperature last, llama-cpp-python's default) would keep only a few."""
    temperature, top_p = 4.0, 0.5
    prompt = backend.prompt_tokens(PROMPT)
    logits = last_logits(plain_llama, prompt)
    ours = _top_p_support(logits / temperature, top_p)
    swapped = _top_p_support(logits, top_p)
    assert len(swapped) < len(ours)

    def text(token):
        return plain_llama.detokenize([token], prev_tokens=prompt).decode("utf-8", errors="ignore")

    params = SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=1)
    drawn = {one(backend, params, seed=s).text for s in range(1, 61)}
    assert drawn <= {text(t) for t in ours}
    assert drawn - {text(t) for t in swapped}, "every draw fits top-p-before-temperature too"


def test_stop_string_cuts_text_and_reports_stop(backend):
    params = SamplingParams(temperature=0.0, max_new_tokens=30)
    full = one(backend, params).text
    stop = full[6:8]
    cut = full.index(stop)
    result = one(backend, SamplingParams(temperature=0.0, max_new_tokens=30, stop=("never-there", stop)))
    assert (result.text, result.finish_reason) == (full[:cut], "stop")
    assert result.completion_tokens < 30


def test_max_new_tokens_ends_with_length(backend):
    result = one(backend, SamplingParams(temperature=1.0, max_new_tokens=7), seed=4)
    assert (result.finish_reason, result.completion_tokens) == ("length", 7)


def test_chat_prompt_is_rendered_with_the_ggufs_own_template(backend, plain_llama):
    expected = "<|system|>be brief\n<|user|>add one\n<|assistant|>"  # tiny_models.GGUF_CHAT_TEMPLATE by hand
    assert backend.render_prompt(CHAT) == expected
    tokens = [plain_llama.token_bos(), *plain_llama.tokenize(expected.encode(), add_bos=False, special=True)]
    assert backend.prompt_tokens(CHAT) == tokens
    assert one(backend, SamplingParams(temperature=0.0, max_new_tokens=3), prompt=CHAT).prompt_tokens == len(tokens)


def test_parallel_instances_give_the_same_samples(tiny_gguf, backend):
    params = SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=16)
    requests = [GenRequest("t/0", i, PROMPT if i % 2 else CHAT, 100 + i) for i in range(6)]
    serial = {r.sample_idx: r for r in backend.generate(requests, params)}
    with_two = LlamaCppBackend(str(tiny_gguf), chat=True, n_ctx=512, parallel=2, batch=1)
    try:
        assert with_two.n_threads >= 1 and len(with_two._llms) == 2
        assert {r.sample_idx: r for r in with_two.generate(requests, params)} == serial
    finally:
        with_two.close()


def test_chat_without_template_is_a_spec_error(tiny_gguf_no_template):
    with pytest.raises(SpecError, match="no tokenizer.chat_template"):
        LlamaCppBackend(str(tiny_gguf_no_template), chat=True, n_ctx=256)
    plain = LlamaCppBackend(str(tiny_gguf_no_template), chat=False, n_ctx=256)
    assert one(plain, SamplingParams(temperature=0.0, max_new_tokens=2)).completion_tokens == 2
    with pytest.raises(SpecError, match="chat messages"):
        one(plain, SamplingParams(temperature=0.0, max_new_tokens=2), prompt=CHAT)
    plain.close()


def test_missing_or_invalid_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        LlamaCppBackend(str(tmp_path / "nope.gguf"), chat=False)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all")
    with pytest.raises(DataError, match="cannot load"):
        LlamaCppBackend(str(junk), chat=False)


def test_unknown_or_bad_options_are_spec_errors(tiny_gguf):
    with pytest.raises(SpecError, match="n_gpu_layers"):
        load_backend("llamacpp", str(tiny_gguf), chat=False, options={"n_gpu_layers": 10})
    with pytest.raises(SpecError, match="parallel=0"):
        LlamaCppBackend(str(tiny_gguf), chat=False, parallel=0)


def test_prompt_longer_than_context_is_a_spec_error(tiny_gguf):
    small = LlamaCppBackend(str(tiny_gguf), chat=False, n_ctx=32)
    with pytest.raises(SpecError, match="n_ctx=32"):
        one(small, SamplingParams(temperature=0.0, max_new_tokens=2), prompt="x " * 40)
    small.close()


def test_describe_records_the_engine_and_file(tiny_gguf, backend):
    d = backend.describe()
    assert d["model_size_bytes"] == tiny_gguf.stat().st_size
    assert d["engine_version"] == llama_cpp.__version__
    assert (d["n_ctx"], d["n_threads"], d["parallel"]) == (512, 1, 1)
