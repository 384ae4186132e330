"""Batched decoding in LlamaCppBackend (batch > 1) on a tiny random llama GGUF: the same samples as one
sequence at a time where the arithmetic allows it (greedy), reproducible for the same batch composition,
one seed and one paper-ordered sampler chain per sequence, stops and finish reasons per sequence."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("llama_cpp")

import llama_cpp

from selfdistill.generate import llamacpp
from selfdistill.generate.base import GenRequest
from selfdistill.generate.llamacpp import LlamaCppBackend, sampler_chain_names
from selfdistill.generate.params import SamplingParams

PROMPT = "def f(x):"
OTHER = "import os\n"


@pytest.fixture(scope="module")
def batched(tiny_gguf):
    b = LlamaCppBackend(str(tiny_gguf), chat=False, n_ctx=512, n_threads=1, batch=4)
    yield b
    b.close()


@pytest.fixture(scope="module")
def sequential(tiny_gguf):
    b = LlamaCppBackend(str(tiny_gguf), chat=False, n_ctx=512, n_threads=1, batch=1)
    yield b
    b.close()


def requests(n: int, prompt: str = PROMPT, task: str = "t/0", seed0: int = 100) -> list[GenRequest]:
    return [GenRequest(task, i, prompt, seed0 + i) for i in range(n)]


def by_key(results) -> dict:
    return {(r.task_id, r.sample_idx): r for r in results}


def test_greedy_batched_equals_one_sequence_at_a_time(batched, sequential):
    """Greedy decoding has no randomness: a sequence decoded beside others (two prompts in one group, a
    group of 3 after a full one) gives the text a lone sequence gives."""
    reqs = requests(5) + requests(2, OTHER, "t/1")
    params = SamplingParams(temperature=0.0, max_new_tokens=24)
    ours, alone = by_key(batched.generate(reqs, params)), by_key(sequential.generate(reqs, params))
    assert ours.keys() == alone.keys() == {(r.task_id, r.sample_idx) for r in reqs}
    for key, r in alone.items():
        assert (ours[key].text, ours[key].completion_tokens, ours[key].finish_reason) == (
            r.text, r.completion_tokens, r.finish_reason)
        assert ours[key].prompt_tokens == r.prompt_tokens


def test_same_batch_composition_reproduces_every_sample(batched):
    reqs = requests(6) + requests(2, OTHER, "t/1")
    params = SamplingParams(temperature=1.2, top_k=40, top_p=0.9, min_p=0.01, max_new_tokens=20)
    first, again = list(batched.generate(reqs, params)), list(batched.generate(reqs, params))
    assert first == again
    assert len({r.text for r in first if r.task_id == "t/0"}) >= 5  # the 6 sequences of a prompt differ


def test_each_sequence_records_its_own_seed_and_different_seeds_differ(batched):
    reqs = [GenRequest("t/0", i, PROMPT, seed) for i, seed in enumerate([7, 7, 8, 9])]
    results = list(batched.generate(reqs, SamplingParams(temperature=1.0, max_new_tokens=24)))
    assert [r.seed for r in results] == [7, 7, 8, 9]
    assert [r.sample_idx for r in results] == [0, 1, 2, 3]
    assert results[0].text == results[1].text  # same seed, same prompt, same group: the same draw
    assert len({results[1].text, results[2].text, results[3].text}) == 3


def test_every_sequence_gets_a_chain_in_the_papers_order_with_its_seed(batched, monkeypatch):
    built = []
    real = llamacpp.build_sampler

    def spy(chain, **kw):
        out = real(chain, **kw)
        built.append((sampler_chain_names(out), kw["seed"]))
        return out

    monkeypatch.setattr(llamacpp, "build_sampler", spy)
    params = SamplingParams(temperature=1.3, top_k=20, top_p=0.8, min_p=0.01, max_new_tokens=2)
    list(batched.generate(requests(4, seed0=50), params))
    assert built == [(["temp", "top-k", "top-p", "min-p", "dist"], 50 + i) for i in range(4)]


def _top_p_support(logits, p):
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    order = np.argsort(-probs)
    return set(order[: int(np.searchsorted(np.cumsum(probs[order]), p) + 1)].tolist())


def test_temperature_is_applied_before_top_p_in_a_batch(tiny_gguf, batched):
    """First tokens drawn in batches at T=4, top-p 0.5 all lie in the top-p support of logits / T, and
    some lie outside the (smaller) support of the raw logits, which temperature-last would sample from."""
    llm = llama_cpp.Llama(model_path=str(tiny_gguf), n_ctx=256, n_threads=1, verbose=False)
    prompt = batched.prompt_tokens(PROMPT)
    llm.eval(prompt)
    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),)).copy()

    def text(token):
        return llm.detokenize([token], prev_tokens=prompt).decode("utf-8", errors="ignore")

    ours, swapped = ({text(t) for t in _top_p_support(x, 0.5)} for x in (logits / 4.0, logits))
    llm.close()
    drawn = {r.text for r in batched.generate(requests(60, seed0=1), SamplingParams(temperature=4.0, top_p=0.5,
                                                                                     max_new_tokens=1))}
    assert drawn <= ours
    assert drawn - swapped


def test_stop_strings_and_lengths_end_each_sequence_alone(batched, sequential):
    greedy = SamplingParams(temperature=0.0, max_new_tokens=30)
    full = {r.task_id: r.text for r in sequential.generate(requests(1) + requests(1, OTHER, "t/1"), greedy)}
    stop = full["t/0"][6:8]
    assert stop not in full["t/1"]  # so the second prompt's sequences run to max_new_tokens
    params = SamplingParams(temperature=0.0, max_new_tokens=30, stop=("never-there", stop))
    results = list(batched.generate(requests(2) + requests(2, OTHER, "t/1"), params))
    for r in results:
        if r.task_id == "t/0":
            assert (r.text, r.finish_reason) == (full["t/0"][: full["t/0"].index(stop)], "stop")
            assert r.completion_tokens < 30
        else:
            assert (r.text, r.finish_reason, r.completion_tokens) == (full["t/1"], "length", 30)


def test_context_limit_ends_a_sequence_with_length(tiny_gguf):
    small = LlamaCppBackend(str(tiny_gguf), chat=False, n_ctx=40, n_threads=1, batch=3)
    try:
        results = list(small.generate(requests(3), SamplingParams(temperature=1.0, max_new_tokens=200)))
    finally:
        small.close()
    n_prompt = results[0].prompt_tokens
    assert [(r.finish_reason, r.completion_tokens) for r in results] == [("length", 40 - n_prompt)] * 3


def test_each_prompt_is_evaluated_once_per_group(batched, monkeypatch):
    decoder = batched._decoders[0]
    seen = []
    real = decoder._decode_prompt
    monkeypatch.setattr(decoder, "_decode_prompt", lambda tokens, seq: (seen.append(seq), real(tokens, seq))[1])
    list(batched.generate(requests(3) + requests(1, OTHER, "t/1"), SamplingParams(temperature=1.0, max_new_tokens=4)))
    assert seen == [0, 3]  # one group of 4: the first prompt on sequence 0, the second on sequence 3


def test_parallel_instances_give_the_same_batched_samples(tiny_gguf, batched):
    reqs = requests(8) + requests(4, OTHER, "t/1")
    params = SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=12)
    two = LlamaCppBackend(str(tiny_gguf), chat=False, n_ctx=512, n_threads=1, batch=4, parallel=2)
    try:
        assert by_key(two.generate(reqs, params)) == by_key(batched.generate(reqs, params))
    finally:
        two.close()


def test_describe_records_the_batching(batched, sequential):
    assert (batched.describe()["batch"], sequential.describe()["batch"]) == (4, 1)
    assert "one sampler chain and seed per sequence" in batched.describe()["batch_decoding"]


def test_llamacpp_threads_drop_while_busy_and_come_back(tiny_gguf):
    backend = LlamaCppBackend(str(tiny_gguf), chat=False, n_ctx=256, n_threads=2, batch=2)
    try:
        reqs = [GenRequest("t", i, "def f(x):", 1 + i) for i in range(2)]
        params = SamplingParams(temperature=1.0, max_new_tokens=4)
        before = list(backend.generate(reqs, params))
        backend.set_threads(1)
        assert list(backend.generate(reqs, params)) == before  # threads change speed, never the samples
        assert backend._decoders[0].n_threads == 1
        backend.set_threads(None)
        list(backend.generate(reqs, params))
        assert backend._decoders[0].n_threads == 2
        backend.set_threads(8)  # never more than configured
        assert backend._decoders[0].want_threads == 2
    finally:
        backend.close()


def test_a_finished_sequence_gives_its_slot_to_the_next_request(batched, sequential, tiny_gguf):
    """Continuous batching: with 2 slots, sequences that stop early (a stop string) make room for the next
    requests mid-stream; every sample is still the one a lone greedy sequence gives, and results come out
    as sequences finish."""
    greedy = SamplingParams(temperature=0.0, max_new_tokens=20)
    reqs = requests(3) + requests(3, OTHER, "t/1")
    full = {r.task_id: r.text for r in sequential.generate(reqs[:1] + reqs[3:4], greedy)}
    stop = full["t/0"][3:5]
    assert stop not in full["t/1"]
    params = SamplingParams(temperature=0.0, max_new_tokens=20, stop=(stop,))
    two = LlamaCppBackend(str(tiny_gguf), chat=False, n_ctx=512, n_threads=1, batch=2)
    try:
        results = list(two.generate(reqs, params))
    finally:
        two.close()
    assert by_key(results) == by_key(sequential.generate(reqs, params))
    order = [(r.task_id, r.sample_idx) for r in results]
    assert order.index(("t/0", 2)) < order.index(("t/1", 0))  # the short ones finish first, in the slots freed
    assert [r.finish_reason for r in results if r.task_id == "t/1"] == ["length"] * 3


@pytest.mark.parametrize(("one_s", "two_s", "chosen"), [(0.01, 0.08, 1), (0.02, 0.012, 2)],
                         ids=["loaded machine: 1 thread", "idle machine: all threads"])
def test_thread_chooser_probes_both_counts_and_keeps_the_faster(one_s, two_s, chosen):
    from selfdistill.generate.llamacpp_batch import _ThreadChooser

    chooser, used = _ThreadChooser(), []
    for _ in range(2 * chooser.CYCLE):
        n = chooser.next(2)
        used.append(n)
        chooser.record(n, one_s if n == 1 else two_s)
    probe = chooser.PROBE
    assert used[:probe] == [1] * probe and used[probe : 2 * probe] == [2] * probe
    assert set(used[2 * probe : chooser.CYCLE]) == {chosen}
    assert used[chooser.CYCLE : chooser.CYCLE + probe] == [1] * probe  # probed again every cycle
    assert _ThreadChooser().next(1) == 1  # the live scorer holds the other core: nothing to choose
