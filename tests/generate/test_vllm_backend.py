"""VLLMBackend without vLLM: pure argument builders, a fake `vllm` module in sys.modules, and the
missing-extra error. vLLM itself is never installed here (it pulls CUDA)."""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import ClassVar

import pytest

from selfdistill.errors import BackendUnavailable, SpecError
from selfdistill.generate.base import GenRequest
from selfdistill.generate.params import SamplingParams
from selfdistill.generate.vllm_backend import (
    VLLMBackend,
    llm_kwargs,
    sampling_kwargs,
    shard_of,
    to_result,
)

PARAMS = SamplingParams(temperature=0.6, top_p=0.9, top_k=50, min_p=0.0, max_new_tokens=256, stop=("\nEND",))


def test_llm_kwargs_defaults_never_inherit_generation_config():
    assert llm_kwargs("org/model") == {
        "model": "org/model", "tensor_parallel_size": 1, "dtype": "auto", "gpu_memory_utilization": 0.9,
        "enable_prefix_caching": True, "seed": 0, "generation_config": "vllm",
    }


def test_llm_kwargs_passes_max_model_len_and_external_launcher_for_data_parallel():
    kw = llm_kwargs("m", tensor_parallel_size=2, data_parallel_size=4, dtype="bfloat16",
                    gpu_memory_utilization=0.8, max_model_len=8192, enable_prefix_caching=False, seed=3)
    assert kw["max_model_len"] == 8192 and kw["tensor_parallel_size"] == 2
    assert kw["data_parallel_size"] == 4 and kw["distributed_executor_backend"] == "external_launcher"
    rest = (kw["dtype"], kw["gpu_memory_utilization"], kw["enable_prefix_caching"], kw["seed"])
    assert rest == ("bfloat16", 0.8, False, 3)
    assert "distributed_executor_backend" not in llm_kwargs("m", data_parallel_size=1)


def test_sampling_kwargs_state_every_field_with_the_sample_seed():
    assert sampling_kwargs(PARAMS, seed=12345) == {
        "n": 1, "temperature": 0.6, "top_p": 0.9, "top_k": 50, "min_p": 0.0, "max_tokens": 256,
        "seed": 12345, "stop": ["\nEND"], "repetition_penalty": 1.0,
    }


def test_sampling_kwargs_off_values():
    kw = sampling_kwargs(SamplingParams(temperature=0.0), seed=1)
    assert (kw["top_k"], kw["top_p"], kw["min_p"], kw["stop"], kw["temperature"]) == (-1, 1.0, 0.0, None, 0.0)


def test_shards_are_stable_and_cover_every_rank():
    keys = [(f"t/{i}", j) for i in range(50) for j in range(4)]
    shards = [shard_of(t, j, 4) for t, j in keys]
    assert shards == [shard_of(t, j, 4) for t, j in keys]
    assert set(shards) == {0, 1, 2, 3}
    assert all(shard_of(t, j, 1) == 0 for t, j in keys)


# --- a fake vllm module --------------------------------------------------------------------------


class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class FakeLLM:
    instances: ClassVar[list[FakeLLM]] = []
    dp_rank = 0

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls: list[tuple[str, list, list]] = []
        parallel = types.SimpleNamespace(data_parallel_rank=FakeLLM.dp_rank)
        self.llm_engine = types.SimpleNamespace(vllm_config=types.SimpleNamespace(parallel_config=parallel))
        FakeLLM.instances.append(self)

    def generate(self, prompts, sampling_params=None, use_tqdm=True):
        self.calls.append(("generate", list(prompts), list(sampling_params)))
        return [_output(p, sp, len(p)) for p, sp in zip(prompts, sampling_params, strict=True)]

    def chat(self, messages, sampling_params=None, use_tqdm=True):
        self.calls.append(("chat", list(messages), list(sampling_params)))
        return [_output(m[-1]["content"], sp, 10 * len(m)) for m, sp in zip(messages, sampling_params, strict=True)]


def _output(prompt_text, sp, n_prompt_tokens):
    seed = sp.kwargs["seed"]
    finish = "length" if sp.kwargs["max_tokens"] < 8 else "stop"
    completion = types.SimpleNamespace(text=f"{prompt_text}|seed={seed}", token_ids=list(range(seed % 7 + 1)),
                                       finish_reason=finish)
    return types.SimpleNamespace(outputs=[completion], prompt_token_ids=list(range(n_prompt_tokens)))


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM, module.SamplingParams, module.__version__ = FakeLLM, FakeSamplingParams, "0.0-fake"
    monkeypatch.setitem(sys.modules, "vllm", module)
    FakeLLM.instances, FakeLLM.dp_rank = [], 0
    return module


def chat_request(i: int) -> GenRequest:
    return GenRequest(f"t/{i}", i, ({"role": "system", "content": "s"}, {"role": "user", "content": f"p{i}"}), 100 + i)


def test_chat_backend_builds_the_engine_once_and_calls_chat_with_per_request_params(fake_vllm):
    backend = VLLMBackend("org/model", chat=True, tensor_parallel_size=2, max_model_len=4096)
    [llm] = FakeLLM.instances
    assert llm.kwargs == llm_kwargs("org/model", tensor_parallel_size=2, max_model_len=4096)
    results = list(backend.generate([chat_request(i) for i in range(3)], PARAMS))
    [(method, conversations, params)] = llm.calls
    assert method == "chat"
    assert conversations[0] == [{"role": "system", "content": "s"}, {"role": "user", "content": "p0"}]
    assert [p.kwargs for p in params] == [sampling_kwargs(PARAMS, 100 + i) for i in range(3)]
    assert [(r.task_id, r.sample_idx, r.seed) for r in results] == [(f"t/{i}", i, 100 + i) for i in range(3)]
    assert results[1].text == "p1|seed=101"
    assert (results[1].prompt_tokens, results[1].completion_tokens) == (20, 101 % 7 + 1)
    assert {r.finish_reason for r in results} == {"stop"}


def test_base_backend_calls_generate_with_prompt_strings(fake_vllm):
    backend = VLLMBackend("m", chat=False)
    short = SamplingParams(temperature=1.0, max_new_tokens=4)
    [result] = backend.generate([GenRequest("he/0", 0, "def f():\n", 5)], short)
    [(method, prompts, params)] = FakeLLM.instances[0].calls
    assert (method, prompts, params[0].kwargs["seed"]) == ("generate", ["def f():\n"], 5)
    assert (result.finish_reason, result.prompt_tokens, result.completion_tokens) == ("length", 9, 6)


def test_requests_are_sent_in_chunks(fake_vllm, monkeypatch):
    from selfdistill.generate import vllm_backend

    monkeypatch.setattr(vllm_backend, "CHUNK_REQUESTS", 2)
    backend = VLLMBackend("m", chat=True)
    results = list(backend.generate([chat_request(i) for i in range(5)], PARAMS))
    assert [len(c[1]) for c in FakeLLM.instances[0].calls] == [2, 2, 1]
    assert [r.sample_idx for r in results] == [0, 1, 2, 3, 4]


def test_data_parallel_rank_generates_only_its_shard(fake_vllm):
    FakeLLM.dp_rank = 1
    backend = VLLMBackend("m", chat=True, data_parallel_size=2)
    assert FakeLLM.instances[0].kwargs["distributed_executor_backend"] == "external_launcher"
    requests = [chat_request(i) for i in range(20)]
    got = {r.sample_idx for r in backend.generate(requests, PARAMS)}
    assert got == {r.sample_idx for r in requests if shard_of(r.task_id, r.sample_idx, 2) == 1}
    assert 0 < len(got) < 20 and backend.describe()["dp_rank"] == 1


def test_an_aborted_request_is_an_error_not_a_sample():
    completion = types.SimpleNamespace(text="", token_ids=[], finish_reason="abort")
    output = types.SimpleNamespace(outputs=[completion], prompt_token_ids=[1, 2])
    with pytest.raises(RuntimeError, match="finish_reason='abort'"):
        to_result(chat_request(0), output)


def test_describe_records_version_and_engine_arguments(fake_vllm):
    info = VLLMBackend("m", chat=True, dtype="bfloat16").describe()
    assert info["vllm"] == "0.0-fake" and info["llm_kwargs"]["dtype"] == "bfloat16"
    assert info["llm_kwargs"]["generation_config"] == "vllm"


def test_unknown_and_invalid_options_raise_spec_error_before_loading(fake_vllm):
    with pytest.raises(SpecError, match="unknown option.*n_ctx.*takes tensor_parallel_size"):
        VLLMBackend("m", chat=True, n_ctx=4096)
    with pytest.raises(SpecError, match="gpu_memory_utilization=1.5"):
        VLLMBackend("m", chat=True, gpu_memory_utilization=1.5)
    with pytest.raises(SpecError, match="tensor_parallel_size=0"):
        VLLMBackend("m", chat=True, tensor_parallel_size=0)
    assert FakeLLM.instances == []


def test_module_imports_without_vllm_or_torch():
    import subprocess

    code = ("import sys, selfdistill.generate.vllm_backend, selfdistill.generate.openai_backend, "
            "selfdistill.generate.prompts\nassert 'vllm' not in sys.modules and 'torch' not in sys.modules, "
            "[m for m in ('vllm', 'torch') if m in sys.modules]")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_load_backend_without_vllm_names_the_extra():
    from selfdistill.generate.backends import load_backend

    with pytest.raises(BackendUnavailable, match=r"selfdistill\[vllm\]"):
        load_backend("vllm", "org/model", chat=True)


# --- data parallelism through the eval stage: two faked ranks in two threads -----------------------


def dp_spec(tmp_path):
    import re

    from tests.eval_fixtures import make_spec

    path = make_spec(tmp_path)
    text = path.read_text().replace('backend = "llamacpp"', 'backend = "vllm"')
    text, n = re.subn(r"(?m)^options = \{.*?\}", "options = { data_parallel_size = 2 }", text)
    assert n == 1, "the quickstart spec has no generation options line to replace"
    path.write_text(text)
    return path


def run_ranks(report, run_dir, monkeypatch, limit=3):
    """Both DP ranks of one launch, as threads: each one's engine reports its rank; they meet at a barrier."""
    import threading

    from selfdistill.evaluate import EvalConfig, evaluate
    from tests.eval_fixtures import NullProgress

    barrier, lock, results = threading.Barrier(2), threading.Lock(), {}
    monkeypatch.setattr(VLLMBackend, "barrier", lambda self: barrier.wait(timeout=120))
    init = FakeLLM.__init__

    def rank_init(self, **kwargs):
        with lock:
            FakeLLM.dp_rank = int(threading.current_thread().name.removeprefix("rank"))
            init(self, **kwargs)

    monkeypatch.setattr(FakeLLM, "__init__", rank_init)

    def main(rank):
        try:
            results[rank] = evaluate(EvalConfig.from_spec(report.spec), report.heldout, run_dir, "base", limit,
                                     NullProgress(), run_spec=report.spec)
        except BaseException as exc:  # surfaced below
            results[rank] = exc
            barrier.abort()

    threads = [threading.Thread(target=main, args=(r,), name=f"rank{r}") for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    errors = [results.get(r) for r in (0, 1) if isinstance(results.get(r), BaseException)]
    errors.sort(key=lambda e: isinstance(e, threading.BrokenBarrierError))  # the cause first
    if errors:
        raise errors[0]
    return results


def test_data_parallel_eval_writes_rank_files_and_rank_0_merges_and_scores_once(fake_vllm, tmp_path, monkeypatch):
    import json

    from selfdistill.checks import check_spec

    report = check_spec(dp_spec(tmp_path))
    arm = tmp_path / "run" / "base"
    results = run_ranks(report, tmp_path / "run", monkeypatch)
    assert results[1] is None and results[0]["generation"]["n_samples"] == 12  # 3 problems x n = 4

    def keys(path):
        return [(r["task_id"], r["sample_idx"]) for r in map(json.loads, path.read_text().splitlines())]

    merged, shards = keys(arm / "samples.jsonl"), [keys(arm / f"samples.rank{r}.jsonl") for r in (0, 1)]
    assert len(merged) == len(set(merged)) == 12  # no duplicates, no loss
    assert set(shards[0]).isdisjoint(shards[1]) and set(shards[0]) | set(shards[1]) == set(merged)
    assert all(shard_of(t, i, 2) == r for r in (0, 1) for t, i in shards[r])
    outcomes = keys(arm / "outcomes.jsonl")
    assert sorted(outcomes) == sorted(merged)  # scored once, on the merged set
    assert len(json.loads((arm / "generation.json").read_text())["backend_runs"]) == 1  # recorded by rank 0

    calls = len(FakeLLM.instances)
    again = run_ranks(report, tmp_path / "run", monkeypatch)  # a rerun generates nothing and duplicates nothing
    assert again[1] is None and keys(arm / "samples.jsonl") == merged
    assert all(c == [] or all(len(x[1]) == 0 for x in c) for c in (i.calls for i in FakeLLM.instances[calls:]))


def test_a_rank_file_missing_samples_is_refused_at_merge_and_a_torn_line_is_not_a_sample(tmp_path):
    import json
    import types

    from selfdistill.errors import DataError
    from selfdistill.generate.shards import keys_in, merge_shards

    problem = types.SimpleNamespace(task_id="t/0")
    plan = types.SimpleNamespace(arm_dir=tmp_path, problems=[problem], params=types.SimpleNamespace(n=3))
    (tmp_path / "samples.rank0.jsonl").write_text(json.dumps({"task_id": "t/0", "sample_idx": 0}) + "\n")
    (tmp_path / "samples.rank1.jsonl").write_text(
        json.dumps({"task_id": "t/0", "sample_idx": 1}) + "\n" + '{"task_id": "t/0", "sample_i')
    assert keys_in(tmp_path / "samples.rank1.jsonl") == {("t/0", 1)}
    with pytest.raises(DataError, match="1 of 3 samples are in no rank's file"):
        merge_shards(plan, 2)
    with (tmp_path / "samples.rank0.jsonl").open("a") as f:
        f.write(json.dumps({"task_id": "t/0", "sample_idx": 2}) + "\n")
    assert merge_shards(plan, 2) == 1  # the two merged before are not appended again
    assert keys_in(tmp_path / "samples.jsonl") == {("t/0", 0), ("t/0", 1), ("t/0", 2)}


def test_min_p_with_top_p_is_refused_before_any_request(fake_vllm):
    """vLLM cuts min-p before top-p: the SSD order (top-p, then min-p) cannot be honoured, so it is refused."""
    backend = VLLMBackend("m", chat=True)
    both = SamplingParams(temperature=0.6, top_p=0.9, min_p=0.02)
    with pytest.raises(SpecError, match="min_p = 0.02 with top_p = 0.9"):
        list(backend.generate([chat_request(0)], both))
    assert FakeLLM.instances[0].calls == []
    [result] = backend.generate([chat_request(0)], SamplingParams(temperature=0.6, min_p=0.02))  # min-p alone
    assert result.seed == 100
