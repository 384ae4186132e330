"""OpenAIBackend against a real HTTP server on 127.0.0.1 (stdlib http.server in a thread).

The fake server answers /v1/chat/completions and /v1/completions deterministically: the text is the
JSON of the sampling fields it received, usage counts are derived from the request, and a per-seed
script can make it fail (HTTP status) or stall before answering. It counts requests in flight. GET
/v1/models names it as `owned_by` says (llama.cpp's llama-server by default, which honours every SSD
setting) and GET /props reports `total_slots`. llama-cpp-python's REAL server is in
test_llamacpp_server.py.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("openai")

from selfdistill.errors import SpecError
from selfdistill.generate import openai_backend
from selfdistill.generate.base import GenRequest
from selfdistill.generate.openai_backend import (
    OpenAIBackend,
    RequestFailed,
    request_kwargs,
)
from selfdistill.generate.params import SamplingParams
from selfdistill.generate.servers import Dialect

pytestmark = pytest.mark.timeout(30)
ECHOED = ("temperature", "top_p", "top_k", "min_p", "max_tokens", "seed", "stop")


class FakeServer:
    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.hold_until = 0  # > 0: each request waits (<= 5 s) until that many have been in flight at once
        self.owned_by, self.total_slots = "llamacpp", 16
        self.bodies: list[tuple[str, dict]] = []
        self.script: dict[int, list] = {}  # seed -> per-attempt actions: int status, ("stall", s), "abort"
        self.attempts: dict[int, int] = {}
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                if self.path == "/v1/models":
                    return self._send(200, {"object": "list", "data": [
                        {"id": "fake-model", "object": "model", "owned_by": server.owned_by}]})
                if self.path == "/props" and server.owned_by == "llamacpp":
                    return self._send(200, {"total_slots": server.total_slots})
                if self.path == "/get_server_info" and server.owned_by == "sglang" and server.total_slots:
                    return self._send(200, {"max_running_requests": server.total_slots})
                return self._send(404, {"error": {"message": "no such route"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.bodies.append((self.path, body))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    attempt = server.attempts.get(body["seed"], 0)
                    server.attempts[body["seed"]] = attempt + 1
                    actions = server.script.get(body["seed"], [])
                    action = actions[attempt] if attempt < len(actions) else None
                try:
                    deadline = time.monotonic() + 5  # threads start late on a loaded machine
                    while server.max_in_flight < server.hold_until and time.monotonic() < deadline:
                        time.sleep(0.01)
                    time.sleep(server.delay_s)
                    self._answer(body, action)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _answer(self, body, action):
                if isinstance(action, tuple):  # ("stall", seconds): never answer; the client times out
                    time.sleep(action[1])
                    return None
                if isinstance(action, int):
                    return self._send(action, {"error": {"message": f"scripted {action}"}})
                chat = self.path.endswith("/chat/completions")
                if self.path not in ("/v1/chat/completions", "/v1/completions"):
                    return self._send(404, {"error": {"message": "no such route"}})
                text = json.dumps({k: body.get(k) for k in ECHOED}, sort_keys=True)
                finish = "abort" if action == "abort" else ("length" if body["max_tokens"] < 8 else "stop")
                choice = {"index": 0, "finish_reason": finish}
                if chat:
                    choice["message"] = {"role": "assistant", "content": text}
                else:
                    choice["text"] = text
                prompt_tokens = len(json.dumps(body["messages"] if chat else body["prompt"]))
                self._send(200, {
                    "id": "x", "object": "chat.completion" if chat else "text_completion", "created": 0,
                    "model": body["model"], "choices": [choice],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": body["seed"] % 100,
                              "total_tokens": prompt_tokens + body["seed"] % 100},
                })

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


@pytest.fixture
def server(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(openai_backend, "BACKOFF_BASE_S", 0.01)
    fake = FakeServer()
    fake.thread.start()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()


def chat_request(i: int, seed: int | None = None) -> GenRequest:
    messages = ({"role": "system", "content": "sys"}, {"role": "user", "content": f"problem {i}"})
    return GenRequest(f"t/{i}", i, messages, seed if seed is not None else 1000 + i)


def make(fake: FakeServer, chat: bool = True, **options) -> OpenAIBackend:
    return OpenAIBackend("fake-model", chat=chat, base_url=fake.base_url, **options)


PARAMS = SamplingParams(temperature=0.7, top_p=0.95, top_k=20, min_p=0.05, max_new_tokens=64, stop=("\nEND",))


def test_chat_sends_every_sampling_field_and_the_seed_per_request(server):
    backend = make(server)
    results = sorted(backend.generate([chat_request(i) for i in range(3)], PARAMS), key=lambda r: r.sample_idx)
    assert [r.seed for r in results] == [1000, 1001, 1002]
    assert len(server.bodies) == 3
    for path, body in server.bodies:
        assert path == "/v1/chat/completions"
        assert body["model"] == "fake-model"
        assert body["messages"][1]["content"].startswith("problem ")
        assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.7, 0.95, 64)
        assert (body["top_k"], body["min_p"], body["repeat_penalty"], body["typical_p"]) == (20, 0.05, 1.0, 1.0)
        assert body["samplers"] == ["temperature", "top_k", "top_p", "min_p"]
        assert body["stop"] == ["\nEND"]
    assert sorted(b["seed"] for _, b in server.bodies) == [1000, 1001, 1002]
    echoed = json.loads(results[1].text)
    assert (echoed["seed"], echoed["top_k"], echoed["temperature"]) == (1001, 20, 0.7)


def test_results_carry_finish_reason_and_usage_tokens(server):
    backend = make(server)
    [stop] = backend.generate([chat_request(0, seed=42)], PARAMS)
    [length] = backend.generate([chat_request(1, seed=43)], SamplingParams(temperature=1.0, max_new_tokens=4))
    assert (stop.task_id, stop.sample_idx, stop.seed) == ("t/0", 0, 42)
    assert (stop.finish_reason, stop.completion_tokens) == ("stop", 42)
    assert stop.prompt_tokens > 0
    assert (length.finish_reason, length.completion_tokens) == ("length", 43)


def test_base_model_uses_completions_with_the_prompt_string(server):
    backend = make(server, chat=False)
    [result] = backend.generate([GenRequest("he/0", 0, "def f():\n", 7)], PARAMS)
    path, body = server.bodies[0]
    assert path == "/v1/completions" and body["prompt"] == "def f():\n" and "messages" not in body
    assert json.loads(result.text)["seed"] == 7


@pytest.mark.parametrize("owned_by, top_k_off, penalty_key", [
    ("llamacpp", 0, "repeat_penalty"), ("me", 0, "repeat_penalty"),
    ("vllm", -1, "repetition_penalty"), ("sglang", -1, "repetition_penalty"),
])
def test_off_values_are_explicit_in_each_servers_dialect(server, owned_by, top_k_off, penalty_key):
    server.owned_by = owned_by
    backend = make(server)
    list(backend.generate([chat_request(0)], SamplingParams(temperature=0.0)))
    body = server.bodies[0][1]
    assert (body["top_k"], body["min_p"], body["top_p"], body["temperature"]) == (top_k_off, 0.0, 1.0, 0.0)
    assert body[penalty_key] == 1.0 and "stop" not in body
    assert ("samplers" in body) == (owned_by == "llamacpp")  # only llama-server reads a sampler order
    other = {"repeat_penalty", "repetition_penalty"} - {penalty_key}
    assert not other & set(body)


def test_the_server_is_detected_and_recorded(server):
    server.owned_by, server.total_slots = "sglang", None
    info = make(server).describe()
    assert (info["server"], info["server_detected"], info["server_slots"]) == ("sglang", True, None)


def test_a_declared_server_the_server_contradicts_is_refused(server):
    server.owned_by = "me"
    with pytest.raises(SpecError, match="server = 'vllm' but the server .* is llama-cpp-python"):
        make(server, server="vllm")
    with pytest.raises(SpecError, match="'tgi' is not a server"):
        make(server, server="tgi")


def test_an_unknown_server_must_be_declared(server):
    server.owned_by = "someone"
    with pytest.raises(SpecError, match="cannot tell which server.*options.server"):
        make(server)
    assert make(server, server="vllm").describe()["server_detected"] is False


@pytest.mark.parametrize("owned_by, params, setting", [
    ("vllm", PARAMS, "min_p = 0.05 with top_p = 0.95"),
    ("sglang", PARAMS, "top_k = 20 with top_p = 0.95: SGLang filters top-k and top-p jointly"),
    ("me", SamplingParams(temperature=1.5, top_p=0.9), "temperature = 1.5 with top_p = 0.9"),
    ("me", SamplingParams(temperature=0.7, min_p=0.1), "temperature = 0.7 with top_p = 1.0, min_p = 0.1"),
])
def test_what_a_server_cannot_honour_is_refused_before_any_request(server, owned_by, params, setting):
    server.owned_by = owned_by
    with pytest.raises(SpecError, match=setting):
        list(make(server).generate([chat_request(0)], params))
    assert server.bodies == []


@pytest.mark.parametrize("owned_by, params", [
    ("vllm", SamplingParams(temperature=1.5, top_p=0.9, top_k=20)),  # no min-p: vLLM's order is SSD's
    ("sglang", SamplingParams(temperature=1.5, top_p=0.9, min_p=0.1)),  # min-p is relative to the top token
    ("me", SamplingParams(temperature=1.5, top_k=20)),  # top-k commutes with temperature
    ("me", SamplingParams(temperature=1.0, top_p=0.9, min_p=0.1)),  # temperature 1 is the identity
    ("me", SamplingParams(temperature=0.0, top_p=0.9)),  # greedy
    ("llamacpp", PARAMS),  # llama-server takes the order itself
])
def test_what_a_server_honours_is_sent(server, owned_by, params):
    server.owned_by = owned_by
    [result] = make(server).generate([chat_request(0)], params)
    assert json.loads(result.text)["temperature"] == params.temperature


def test_extra_body_option_overrides_and_adds(server):
    backend = make(server, extra_body={"samplers": ["top_k", "temperature"], "cache_prompt": True})
    list(backend.generate([chat_request(0)], PARAMS))
    body = server.bodies[0][1]
    assert body["samplers"] == ["top_k", "temperature"] and body["cache_prompt"] is True
    assert body["top_k"] == 20


def test_concurrency_bound_is_respected(server):
    server.delay_s = 0.15
    backend = make(server, concurrency=3)
    results = list(backend.generate([chat_request(i) for i in range(9)], PARAMS))
    assert sorted(r.sample_idx for r in results) == list(range(9))
    assert server.max_in_flight == 3


@pytest.mark.parametrize("owned_by, slots, expected", [
    ("llamacpp", 2, 2), ("me", None, 1), ("vllm", None, 8), ("sglang", 3, 3), ("sglang", None, 8),
])
def test_in_flight_requests_are_bounded_by_what_the_server_runs_at_once(server, owned_by, slots, expected):
    """Queue time must not count against timeout_s: no more requests in flight than the server serves."""
    server.owned_by, server.total_slots, server.delay_s = owned_by, slots, 0.3
    server.hold_until = expected  # the bound is reached even when threads start late; 0.3 s shows any excess
    backend = make(server, concurrency=8)
    assert (backend.concurrency, backend.describe()["concurrency_requested"]) == (expected, 8)
    list(backend.generate([chat_request(i) for i in range(expected + 2)], SamplingParams(temperature=1.0)))
    assert server.max_in_flight == expected


def test_a_500_then_success_is_retried(server):
    server.script[1001] = [500]
    backend = make(server, max_retries=2)
    results = list(backend.generate([chat_request(i) for i in range(3)], PARAMS))
    assert sorted(r.sample_idx for r in results) == [0, 1, 2]
    assert server.attempts == {1000: 1, 1001: 2, 1002: 1}


def test_429_and_server_abort_are_retried(server):
    server.script[1000] = [429, "abort"]
    [result] = make(server, max_retries=2).generate([chat_request(0)], PARAMS)
    assert result.finish_reason == "stop" and server.attempts[1000] == 3


def test_a_timeout_is_retried(server):
    server.script[1000] = [("stall", 1.5)]
    t0 = time.monotonic()
    [result] = make(server, timeout_s=0.3, max_retries=1).generate([chat_request(0)], PARAMS)
    assert result.seed == 1000 and server.attempts[1000] == 2
    assert time.monotonic() - t0 < 1.5


def test_persistent_failure_raises_after_retries_and_fabricates_nothing(server):
    server.script[1000] = [503, 503, 503]
    backend = make(server, max_retries=2)
    with pytest.raises(RequestFailed, match=r"t/0#0 failed 3 times.*HTTP 503"):
        list(backend.generate([chat_request(0)], PARAMS))
    assert server.attempts[1000] == 3


def test_a_client_error_is_not_retried(server):
    server.script[1000] = [400]
    with pytest.raises(RequestFailed, match="HTTP 400"):
        list(make(server, max_retries=3).generate([chat_request(0)], PARAMS))
    assert server.attempts[1000] == 1


def test_unreachable_server_raises_a_clear_error(monkeypatch, server):
    url = server.base_url
    server.httpd.shutdown()
    server.httpd.server_close()
    with pytest.raises(SpecError, match="no answer from .*/models; start the server"):
        OpenAIBackend("m", chat=True, base_url=url)
    backend = OpenAIBackend("m", chat=True, base_url=url, max_retries=1, timeout_s=2.0, server="llama.cpp")
    with pytest.raises(RequestFailed, match=r"failed 2 times.*APIConnectionError"):
        list(backend.generate([chat_request(0)], PARAMS))


def test_describe_names_server_model_and_concurrency(server, monkeypatch):
    monkeypatch.setenv("MY_KEY", "secret-value")
    info = make(server, concurrency=5, api_key_env="MY_KEY").describe()
    assert (info["base_url"], info["model"], info["concurrency"]) == (server.base_url, "fake-model", 5)
    assert info["api_key_set"] is True and "secret-value" not in json.dumps(info)


def test_unknown_and_invalid_options_raise_spec_error_naming_them():
    with pytest.raises(SpecError, match="unknown option.*n_threads.*takes base_url"):
        OpenAIBackend("m", chat=True, base_url="http://127.0.0.1:1/v1", n_threads=2)
    with pytest.raises(SpecError, match="base_url is required"):
        OpenAIBackend("m", chat=True)
    with pytest.raises(SpecError, match="concurrency=0"):
        OpenAIBackend("m", chat=True, base_url="http://127.0.0.1:1/v1", concurrency=0)


def test_load_backend_builds_it_by_name(server):
    from selfdistill.generate.backends import load_backend

    backend = load_backend("openai", "fake-model", chat=True, options={"base_url": server.base_url})
    assert isinstance(backend, OpenAIBackend) and backend.name == "openai"
    backend.close()


def test_request_kwargs_is_pure():
    kwargs = request_kwargs("m", PARAMS, 9, Dialect("llama.cpp", 1, True), {"cache_prompt": False})
    assert kwargs["seed"] == 9 and kwargs["extra_body"]["top_k"] == 20 and kwargs["stop"] == ["\nEND"]
    assert kwargs["extra_body"]["cache_prompt"] is False


def test_closing_the_stream_early_sends_no_further_requests(server):
    server.delay_s = 0.05
    stream = make(server, concurrency=2).generate([chat_request(i) for i in range(10)], PARAMS)
    first = next(stream)
    stream.close()
    time.sleep(0.2)  # let the in-flight request finish
    assert first.task_id.startswith("t/") and len(server.bodies) <= 2
