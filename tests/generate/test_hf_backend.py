"""HFBackend on a tiny random Qwen2 model (and on the tiny GGUF through `gguf_file=`): per-sample seeds
independent of batching, the paper's sampler order, no inherited generation_config, stops, chat template."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

# E402: these imports need torch and transformers, so they come after the importorskip lines that skip this
# module where either is missing
from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    AutoTokenizer,
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from selfdistill.errors import DataError, SpecError  # noqa: E402
from selfdistill.generate.backends import load_backend  # noqa: E402
from selfdistill.generate.base import GenRequest  # noqa: E402
from selfdistill.generate.hf import HFBackend, ordered_warpers  # noqa: E402
from selfdistill.generate.params import SamplingParams  # noqa: E402

PROMPT = "def f(x):"
CHAT = ({"role": "system", "content": "be brief"}, {"role": "user", "content": "add one"})


@pytest.fixture(scope="module")
def backend(tiny_hf):
    b = HFBackend(str(tiny_hf), chat=True, batch_size=4)
    yield b
    b.close()


@pytest.fixture(scope="module")
def reference(tiny_hf):
    """The same model and tokenizer loaded by plain transformers, outside the backend."""
    return AutoTokenizer.from_pretrained(tiny_hf), AutoModelForCausalLM.from_pretrained(tiny_hf).eval()


def one(backend, params, seed=1, prompt=PROMPT, idx=0):
    [result] = backend.generate([GenRequest("t/0", idx, prompt, seed)], params)
    return result


def last_logits(model, tokens):
    with torch.inference_mode():
        return model(torch.tensor([tokens])).logits[0, -1]


@pytest.mark.slow  # many real transformers generations
def test_same_seed_same_text_and_different_seeds_differ(backend):
    params = SamplingParams(temperature=1.0, max_new_tokens=24)
    assert one(backend, params, seed=11) == one(backend, params, seed=11)
    assert len({one(backend, params, seed=s).text for s in range(1, 7)}) >= 5


@pytest.mark.slow  # many real transformers generations
def test_a_sample_is_the_same_alone_or_in_any_batch(backend):
    """Each row draws from its own generator: batch-mates, padding and batch order change nothing."""
    params = SamplingParams(temperature=1.0, top_p=0.9, min_p=0.02, max_new_tokens=20)
    prompts = [PROMPT, "x", CHAT, "a much longer prompt than the others, to force left padding", PROMPT]
    requests = [GenRequest("t/0", i, p, 1000 + i) for i, p in enumerate(prompts)]
    alone = {r.sample_idx: one(backend, params, seed=r.seed, prompt=r.prompt, idx=r.sample_idx) for r in requests}
    batched = {r.sample_idx: r for r in backend.generate(requests, params)}  # batch_size 4: batches of 4 + 1
    assert batched == alone
    assert len({r.text for r in alone.values()}) == len(requests)  # same prompt, other seed: other text


@pytest.mark.slow  # many real transformers generations
def test_greedy_is_argmax_decoding_and_ignores_the_saved_generation_config(backend, reference):
    tokenizer, model = reference
    assert backend.describe()["ignored_generation_config"]["repetition_penalty"] == 3.0
    result = one(backend, SamplingParams(temperature=0.0, max_new_tokens=20))
    tokens = tokenizer(PROMPT)["input_ids"]
    prompt_len = len(tokens)
    for _ in range(20):
        tokens.append(int(last_logits(model, tokens).argmax()))
    # the trap is live: plain generate() picks up the saved repetition_penalty=3.0 and leaves argmax
    with torch.inference_mode():
        inherited = model.generate(torch.tensor([tokens[:prompt_len]]), do_sample=False, max_new_tokens=20)
    assert inherited[0].tolist() != tokens
    assert result.text == tokenizer.decode(tokens[prompt_len:], skip_special_tokens=True)
    assert (result.completion_tokens, result.prompt_tokens, result.finish_reason) == (20, prompt_len, "length")


@pytest.mark.parametrize("temperature", [0.7, 1.5, 4.0])
def test_top_k_1_is_greedy_at_any_temperature(backend, temperature):
    greedy = one(backend, SamplingParams(temperature=0.0, max_new_tokens=20)).text
    assert one(backend, SamplingParams(temperature=temperature, top_k=1, max_new_tokens=20), seed=99).text == greedy


def test_warpers_are_in_the_papers_order():
    full = ordered_warpers(SamplingParams(temperature=0.6, top_k=20, top_p=0.95, min_p=0.05))
    assert [type(w) for w in full] == [TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper, MinPLogitsWarper]
    assert [type(w) for w in ordered_warpers(SamplingParams(temperature=1.0))] == [TemperatureLogitsWarper]


def _support(warpers, logits):
    scores = logits[None].clone()
    for w in warpers:
        scores = w(None, scores)
    return set(torch.isfinite(scores[0]).nonzero().flatten().tolist())


@pytest.mark.slow  # many real transformers generations
def test_temperature_is_applied_before_top_p(backend, reference):
    """A hot temperature first flattens the distribution, so top-p keeps many tokens; top-p on the raw
    logits (temperature after top-p) would keep only a few."""
    tokenizer, model = reference
    temperature, top_p = 4.0, 0.5
    logits = last_logits(model, tokenizer(PROMPT)["input_ids"])
    ours = _support([TemperatureLogitsWarper(temperature), TopPLogitsWarper(top_p)], logits)
    swapped = _support([TopPLogitsWarper(top_p), TemperatureLogitsWarper(temperature)], logits)
    assert len(swapped) < len(ours)

    params = SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=1)
    requests = [GenRequest("t/0", s, PROMPT, s) for s in range(1, 61)]
    drawn = {r.text for r in backend.generate(requests, params)}
    assert drawn <= {tokenizer.decode([t]) for t in ours}
    assert drawn - {tokenizer.decode([t]) for t in swapped}, "every draw fits top-p-before-temperature too"


def test_stop_string_cuts_text_and_reports_stop(backend):
    full = one(backend, SamplingParams(temperature=0.0, max_new_tokens=30)).text
    stop = full[6:8]
    cut = full.index(stop)
    result = one(backend, SamplingParams(temperature=0.0, max_new_tokens=30, stop=("never-there", stop)))
    assert (result.text, result.finish_reason) == (full[:cut], "stop")
    assert result.completion_tokens < 30


def test_stop_in_one_row_does_not_end_the_others(backend):
    params = SamplingParams(temperature=1.0, max_new_tokens=16)
    free = {r.sample_idx: r for r in backend.generate([GenRequest("t/0", i, PROMPT, 50 + i) for i in range(3)], params)}
    stop = free[0].text[2:4]
    stopped = {r.sample_idx: r for r in backend.generate(
        [GenRequest("t/0", i, PROMPT, 50 + i) for i in range(3)],
        SamplingParams(temperature=1.0, max_new_tokens=16, stop=(stop,)))}
    assert stopped[0].text == free[0].text[: free[0].text.index(stop)] and stopped[0].finish_reason == "stop"
    for i in (1, 2):
        if stop not in free[i].text:
            assert stopped[i] == free[i]


def test_max_new_tokens_ends_with_length(backend):
    result = one(backend, SamplingParams(temperature=1.0, max_new_tokens=7), seed=4)
    assert (result.finish_reason, result.completion_tokens) == ("length", 7)


def test_chat_prompt_is_rendered_with_the_models_own_template(backend, reference):
    tokenizer, _ = reference
    expected = (  # tiny_models.HF_CHAT_TEMPLATE by hand
        "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nadd one<|im_end|>\n<|im_start|>assistant\n"
    )
    assert backend.render_prompt(CHAT) == expected
    tokens = tokenizer(expected, add_special_tokens=False)["input_ids"]
    assert backend.prompt_tokens(CHAT) == tokens
    assert tokens.count(tokenizer.convert_tokens_to_ids("<|im_start|>")) == 3  # specials parsed, not spelled
    assert one(backend, SamplingParams(temperature=0.0, max_new_tokens=3), prompt=CHAT).prompt_tokens == len(tokens)


def test_chat_without_template_is_a_spec_error(tiny_hf_no_template):
    with pytest.raises(SpecError, match="no chat template"):
        HFBackend(str(tiny_hf_no_template), chat=True)
    plain = HFBackend(str(tiny_hf_no_template), chat=False)
    assert one(plain, SamplingParams(temperature=0.0, max_new_tokens=2)).completion_tokens == 2
    with pytest.raises(SpecError, match="chat messages"):
        one(plain, SamplingParams(temperature=0.0, max_new_tokens=2), prompt=CHAT)


def test_gguf_file_loads_through_transformers_and_matches_llama_cpp(tiny_gguf):
    hf = HFBackend(str(tiny_gguf), chat=True, batch_size=2)
    d = hf.describe()
    assert (d["gguf_file"], d["dtype"]) == (tiny_gguf.name, "float32")
    assert hf.render_prompt(CHAT) == "<|system|>be brief\n<|user|>add one\n<|assistant|>"
    greedy = SamplingParams(temperature=0.0, max_new_tokens=20)
    ours = one(hf, greedy)
    llama_cpp_backend = pytest.importorskip("selfdistill.generate.llamacpp")
    pytest.importorskip("llama_cpp")
    lc = llama_cpp_backend.LlamaCppBackend(str(tiny_gguf), chat=True, n_ctx=256, n_threads=1)
    try:
        theirs = one(lc, greedy)
    finally:
        lc.close()
    assert (ours.text, ours.completion_tokens, ours.prompt_tokens) == (
        theirs.text, theirs.completion_tokens, theirs.prompt_tokens)


def test_missing_model_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        HFBackend(str(tmp_path / "missing.gguf"), chat=False)
    with pytest.raises(DataError, match="does not exist"):
        HFBackend(str(tmp_path / "no-such-dir"), chat=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="cannot load"):
        HFBackend(str(empty), chat=False)


def test_unknown_or_bad_options_are_spec_errors(tiny_hf):
    with pytest.raises(SpecError, match="attn_implementation"):
        load_backend("hf", str(tiny_hf), chat=False, options={"attn_implementation": "eager"})
    with pytest.raises(SpecError, match="device='tpu'.*batch_size=0"):
        HFBackend(str(tiny_hf), chat=False, device="tpu", batch_size=0)


def test_describe_records_engine_device_and_dtype(backend):
    d = backend.describe()
    assert (d["device"], d["dtype"], d["batch_size"]) == ("cpu", "float32", 4)
    assert d["sampler_order"] == ["temperature", "top_k", "top_p", "min_p", "sample"]
