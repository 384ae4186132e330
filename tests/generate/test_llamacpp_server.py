"""The openai backend against llama-cpp-python's REAL OpenAI-compatible server (`python -m llama_cpp.server`)
on 127.0.0.1, serving the tiny llama GGUF the other backend tests build.

What the records say must be what the server did: for settings the server can honour, it is sent every
stage of the chain (its own defaults would change the samples), and samples with the same seeds match
the in-process llamacpp backend's (which samples in the SSD order) where that was measured to hold; what
it cannot honour is refused before any request. Needs the server's pure-Python deps (fastapi, uvicorn,
sse-starlette, starlette-context, pydantic-settings; the `test` extra pins them).

Seed-for-seed identity is asserted only where it was measured to hold, repeatedly (base-model completions
of the tiny llama GGUF with top-k 20 at T 1.3, top-p 0.9 or min-p 0.1 at T 1). Not root-caused, left
open: at T 1 with no filter (or with top-k = the vocabulary, a no-op filter that only sorts) the server's
draws differ from the in-process backend's and even from its own with the other no-op spelling; at T 0.8
they part after ~16 tokens; on the tiny qwen2 GGUF they differ; top-p with min-p differed in one run of
three. Candidates: llama-cpp-python reuses the previous request's KV prefix (the llamacpp backend resets
the context per request) and its chain's sort points differ. And its chat endpoint never prepends BOS to
a GGUF chat template's text (it assumes the template writes it): chat prompts of a GGUF that asks for BOS
differ from the llamacpp backend's (Qwen2.5's asks for none).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("openai")
pytest.importorskip("llama_cpp")
for module in ("fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings"):
    pytest.importorskip(module)

from selfdistill.errors import SpecError  # noqa: E402
from selfdistill.generate.backends import load_backend  # noqa: E402
from selfdistill.generate.base import GenRequest  # noqa: E402
from selfdistill.generate.params import SamplingParams  # noqa: E402

pytestmark = pytest.mark.timeout(120)
PROMPT = "def add(a, b):\n"
MESSAGES = ({"role": "user", "content": "write add"},)


@pytest.fixture(scope="module")
def server_url(tiny_gguf, tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path_factory.mktemp("server") / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(tiny_gguf), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--n_threads", "1"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/models", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"llama_cpp.server did not start (exit {proc.poll()}); see {log.name}")
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def texts(backend, requests, params) -> dict[int, str]:
    try:
        return {r.sample_idx: r.text for r in backend.generate(requests, params)}
    finally:
        backend.close()


def test_the_server_is_detected_and_served_one_request_at_a_time(server_url):
    backend = load_backend("openai", "tiny", chat=False, options={"base_url": server_url, "concurrency": 8})
    info = backend.describe()
    assert (info["server"], info["server_detected"], info["server_slots"], info["concurrency"]) == (
        "llama-cpp-python", True, 1, 1)
    body = backend.request_body(SamplingParams(temperature=1.3))
    assert (body["top_k"], body["min_p"], body["repeat_penalty"], body["mirostat_mode"]) == (0, 0.0, 1.0, 0)
    assert "repetition_penalty" not in body and "samplers" not in body
    backend.close()


@pytest.mark.parametrize("chat, params", [
    (False, SamplingParams(temperature=1.3, top_k=20, max_new_tokens=24)),  # top-k off and on, T != 1
    (False, SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=24)),  # T = 1: order moot
    (False, SamplingParams(temperature=1.0, min_p=0.1, max_new_tokens=24)),
])
def test_same_seeds_give_the_same_samples_as_the_in_process_backend(server_url, tiny_gguf, chat, params):
    prompt = MESSAGES if chat else PROMPT
    requests = [GenRequest("t/0", i, prompt, 100 + i) for i in range(5)]
    served = texts(load_backend("openai", "tiny", chat=chat, options={"base_url": server_url}), requests, params)
    local = texts(load_backend("llamacpp", str(tiny_gguf), chat=chat, options={"n_threads": 1, "n_ctx": 512}),
                  requests, params)
    assert served == local
    assert len(set(served.values())) == 5  # the seeds reached the sampler (random weights: all differ)


def test_the_servers_own_defaults_would_have_changed_the_samples(server_url, tiny_gguf):
    """The control: in a setting where the sent body reproduces the in-process samples exactly (the test
    above), leaving the server's own defaults in (repeat_penalty 1.1, min_p 0.05) changes them."""
    params = SamplingParams(temperature=1.3, top_k=20, max_new_tokens=24)
    requests = [GenRequest("t/0", i, PROMPT, 100 + i) for i in range(5)]
    leaky = {"repeat_penalty": 1.1, "min_p": 0.05}
    served = texts(load_backend("openai", "tiny", chat=False, options={"base_url": server_url, "extra_body": leaky}),
                   requests, params)
    local = texts(load_backend("llamacpp", str(tiny_gguf), chat=False, options={"n_threads": 1, "n_ctx": 512}),
                  requests, params)
    assert sum(served[i] != local[i] for i in served) >= 3


def test_chat_goes_through_the_servers_template_with_the_recorded_body(server_url):
    backend = load_backend("openai", "tiny", chat=True, options={"base_url": server_url})
    params = SamplingParams(temperature=1.3, top_k=20, max_new_tokens=12)
    served = texts(backend, [GenRequest("t/0", i, MESSAGES, 7 + i) for i in range(2)], params)
    again = texts(load_backend("openai", "tiny", chat=True, options={"base_url": server_url}),
                  [GenRequest("t/0", i, MESSAGES, 7 + i) for i in range(2)], params)
    assert served == again and served[0] != served[1]  # the per-sample seed is honoured


def test_an_order_the_server_cannot_follow_is_refused(server_url):
    backend = load_backend("openai", "tiny", chat=False, options={"base_url": server_url})
    with pytest.raises(SpecError, match="temperature = 1.6 with top_p = 0.95.*applies temperature AFTER"):
        texts(backend, [GenRequest("t/0", 0, PROMPT, 1)], SamplingParams(temperature=1.6, top_p=0.95))



@pytest.mark.slow  # the eval stage end to end through a live server
def test_eval_through_the_server_refuses_with_exit_2_then_records_what_it_sent(server_url, tmp_path):
    """The CLI path: a setting the server cannot follow is exit 2 naming it, with no sample drawn; fixed, the
    same arm runs and generation.json records the detected server and the exact request body."""
    import json
    import os
    import re

    from tests.eval_fixtures import make_spec

    spec = make_spec(tmp_path)  # T 0.8, top_p 0.95, top_k 20
    text = spec.read_text().replace('backend = "llamacpp"', 'backend = "openai"')
    text = re.sub(r"(?m)^max_new_tokens = \d+", "max_new_tokens = 32", text)
    text, n = re.subn(r"(?m)^options = \{.*?\}", f'options = {{ base_url = "{server_url}", timeout_s = 60 }}', text)
    assert n == 1
    spec.write_text(text)
    env = dict(os.environ, NO_PROXY="127.0.0.1,localhost")
    command = [sys.executable, "-m", "selfdistill", "eval", str(spec), "--limit", "1", "--run-dir",
               str(tmp_path / "run")]
    refused = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "temperature = 0.8 with top_p = 0.95" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "run" / "base" / "samples.jsonl").read_text()

    spec.write_text(text.replace("top_p = 0.95", "top_p = 1.0"))
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "run" / "base" / "generation.json").read_text())
    run = record["backend_runs"][-1]
    assert (run["server"], run["server_detected"], run["concurrency"]) == ("llama-cpp-python", True, 1)
    assert run["request_body"] == {"top_k": 20, "min_p": 0.0, "repeat_penalty": 1.0, "mirostat_mode": 0}
    assert record["sampling"]["top_p"] == 1.0
    samples = (tmp_path / "run" / "base" / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 4
