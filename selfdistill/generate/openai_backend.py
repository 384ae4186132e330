"""Generation through an OpenAI-compatible HTTP server (vLLM `vllm serve`, SGLang, llama.cpp's
`llama-server`, llama-cpp-python's server), with the `openai` client (extra `selfdistill[openai]`).

    load_backend("openai", model="qwen-coder", chat=True,
                 options={"base_url": "http://127.0.0.1:8000/v1", "concurrency": 16})

Chat models use /v1/chat/completions (the SERVER applies the model's chat template); base models use
/v1/completions. Every request states the whole sampling chain in the server's own dialect, so no server
default leaks in (`servers.py` has the per-server table):
  top level    temperature, top_p, max_tokens (= max_new_tokens), seed (the sample's own), stop
  extra body   what the server reads for top-k ("off" spelled its way), min-p, the repetition penalty
               (1.0) and, for llama.cpp's llama-server, the sampler order; then `extra_body` from the
               options, which overrides any of these.
The server is detected on load (GET /models: owned_by) or declared (`server = "vllm" | "sglang" |
"llama.cpp" | "llama-cpp-python"`). A setting the server cannot honour (vLLM/SGLang: min-p with top-p;
llama-cpp-python: top-p/min-p at a temperature other than 1, since it applies temperature last) is
refused with a SpecError before any request, never recorded as applied. generation.json records the
server and the exact body sent (`describe()`). OpenAI's own hosted API is not a target.

Timeouts mean generation time: requests in flight are bounded by `concurrency` AND by what the server
runs at once (llama-cpp-python: 1; llama-server: its `total_slots` from GET /props; vLLM and SGLang batch,
so `concurrency` alone), so a request never waits in the server's queue while its `timeout_s` runs.

A connection error, timeout, 408/409/429 or 5xx (and a server-side abort) is retried up to `max_retries`
times with exponential backoff and jitter; any other error, or one that persists, raises `RequestFailed`
naming the sample: a failed request never becomes an empty sample. Results are yielded as they complete.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import random
import time
from collections.abc import Iterator, Sequence
from typing import Any

from selfdistill.errors import SelfdistillError, SpecError
from selfdistill.generate.base import GenRequest, GenResult, chat_messages, prompt_text
from selfdistill.generate.params import SamplingParams
from selfdistill.generate.servers import SERVERS, Dialect, detect

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 409, 429})  # and every 5xx
RETRYABLE_FINISH = frozenset({"abort", "error"})  # a server that gave up on the request
BACKOFF_BASE_S = 0.5  # attempt k waits BACKOFF_BASE_S * 2**k (capped, with jitter), or Retry-After
BACKOFF_MAX_S = 20.0


class RequestFailed(SelfdistillError):
    """A generation request failed for good (after retries, or with an error retrying cannot fix)."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        chat: bool,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        extra_body: dict[str, Any] | None = None,
        server: str = "auto",
        **unknown: Any,
    ) -> None:
        _check_options(unknown, base_url, concurrency, timeout_s, max_retries, extra_body)
        import openai  # lazily: the core never needs the client

        self.model, self.chat, self.base_url = model, chat, base_url
        self.api_key_env = api_key_env
        self.dialect: Dialect = detect(base_url, server, os.environ.get(api_key_env))
        slots = self.dialect.slots
        self.concurrency_requested = concurrency
        self.concurrency = min(concurrency, slots) if slots else concurrency
        if self.concurrency < concurrency:
            log.info("%s runs %d request(s) at once: %d in flight, not %d (queue time is not generation time)",
                     self.dialect.server, slots, self.concurrency, concurrency)
        self.timeout_s, self.max_retries = float(timeout_s), max_retries
        self.extra_body = dict(extra_body or {})
        self._openai = openai
        # Local servers need no key; the client refuses None, so a placeholder stands in.
        self._client = openai.OpenAI(
            base_url=base_url, api_key=os.environ.get(api_key_env) or "EMPTY",
            timeout=self.timeout_s, max_retries=0,  # retries are ours: counted, logged, bounded
        )

    def generate(self, requests: Sequence[GenRequest], params: SamplingParams) -> Iterator[GenResult]:
        """One result per request, in completion order; `concurrency` requests in flight at most."""
        self.request_body(params)  # refuses what the server cannot honour, before any request
        pending = iter(requests)
        pool = cf.ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai-gen")
        in_flight: set[cf.Future] = set()
        try:
            while True:
                for request in pending:
                    in_flight.add(pool.submit(self._one, request, params))
                    if len(in_flight) >= self.concurrency:
                        break
                if not in_flight:
                    return
                done, in_flight = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def describe(self) -> dict:
        return {
            "backend": self.name, "base_url": self.base_url, "model": self.model, "chat": self.chat,
            "concurrency": self.concurrency, "concurrency_requested": self.concurrency_requested,
            "timeout_s": self.timeout_s, "max_retries": self.max_retries,
            "api_key_env": self.api_key_env, "api_key_set": bool(os.environ.get(self.api_key_env)),
            "extra_body": self.extra_body, "openai_client": self._openai.__version__,
        } | self.dialect.describe()

    def request_body(self, params: SamplingParams) -> dict:
        """The non-OpenAI fields every request carries for these params (what generation.json records);
        a SpecError naming the setting when the server cannot sample as `params` say."""
        refused = self.dialect.refusals(params)
        if refused:
            raise SpecError(f"error: the {self.dialect.server} server at {self.base_url} cannot sample as the "
                            "spec says: " + "; ".join(refused))
        return self.dialect.body(params) | self.extra_body

    def close(self) -> None:
        self._client.close()

    # --- one request -------------------------------------------------------------------------

    def _one(self, request: GenRequest, params: SamplingParams) -> GenResult:
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                return self._call(request, params)
            except _Retryable as exc:
                if attempt + 1 == attempts:
                    raise RequestFailed(
                        f"error: {self.base_url}: sample {request.task_id}#{request.sample_idx} failed "
                        f"{attempts} times, last: {exc}; check the server's log and GET {self.base_url}/models"
                        + (f"; a timeout with {self.concurrency} in flight means generation itself took over "
                           f"timeout_s = {self.timeout_s:g} s: raise options.timeout_s"
                           if "Timeout" in str(exc) else "")
                    ) from None
                wait_s = _backoff_s(attempt, exc.retry_after_s)
                log.warning("%s#%d: %s; retry %d/%d in %.1fs", request.task_id, request.sample_idx,
                            exc, attempt + 1, self.max_retries, wait_s)
                time.sleep(wait_s)
        raise AssertionError("unreachable")

    def _call(self, request: GenRequest, params: SamplingParams) -> GenResult:
        openai = self._openai
        kwargs = request_kwargs(self.model, params, request.seed, self.dialect, self.extra_body)
        try:
            if self.chat:
                response = self._client.chat.completions.create(messages=chat_messages(request), **kwargs)
            else:
                response = self._client.completions.create(prompt=prompt_text(request), **kwargs)
        except openai.APIConnectionError as exc:  # also APITimeoutError
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        except openai.APIStatusError as exc:
            if exc.status_code in RETRYABLE_STATUS or exc.status_code >= 500:
                raise _Retryable(f"HTTP {exc.status_code}: {exc.message}", _retry_after_s(exc)) from None
            raise RequestFailed(
                f"error: {self.base_url} refused sample {request.task_id}#{request.sample_idx} with HTTP "
                f"{exc.status_code}: {exc.message}; check options.model / base_url, and options.server "
                f"(spoken as {self.dialect.server}: extra body {sorted(self.dialect.body(params))})"
            ) from None
        return self._result(request, response)

    def _result(self, request: GenRequest, response: Any) -> GenResult:
        if not response.choices:
            raise _Retryable("response has no choices")
        choice = response.choices[0]
        reason = choice.finish_reason
        if reason is None or reason in RETRYABLE_FINISH:
            raise _Retryable(f"generation ended with finish_reason={reason!r}")
        if reason not in ("stop", "length"):
            log.warning("%s#%d: finish_reason=%r recorded as 'stop'", request.task_id, request.sample_idx, reason)
        text = (choice.message.content if self.chat else choice.text) or ""
        usage = response.usage
        return GenResult(
            task_id=request.task_id, sample_idx=request.sample_idx, seed=request.seed, text=text,
            finish_reason="length" if reason == "length" else "stop",
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        )


def request_kwargs(model: str, params: SamplingParams, seed: int, dialect: Dialect,
                   extra_body: dict | None = None) -> dict:
    """The keyword arguments of one `create` call (prompt or messages excluded)."""
    body = dialect.body(params) | dict(extra_body or {})
    kwargs: dict[str, Any] = {
        "model": model, "temperature": params.temperature, "top_p": params.top_p,
        "max_tokens": params.max_new_tokens, "seed": seed, "extra_body": body,
    }
    if params.stop:
        kwargs["stop"] = list(params.stop)
    return kwargs


def _backoff_s(attempt: int, retry_after_s: float | None) -> float:
    if retry_after_s is not None:
        return min(retry_after_s, BACKOFF_MAX_S)
    return min(BACKOFF_BASE_S * 2**attempt, BACKOFF_MAX_S) * random.uniform(0.5, 1.0)


def _retry_after_s(exc: Any) -> float | None:
    try:
        return max(0.0, float(exc.response.headers.get("retry-after")))
    except (AttributeError, TypeError, ValueError):
        return None


def _check_options(unknown: dict, base_url: str | None, concurrency: Any, timeout_s: Any,
                   max_retries: Any, extra_body: Any) -> None:
    problems = []
    if unknown:
        problems.append(
            f"unknown option(s) {', '.join(sorted(unknown))}; the openai backend takes base_url, "
            f"api_key_env, concurrency, timeout_s, max_retries, extra_body, server (auto | {' | '.join(SERVERS)})"
        )
    if not base_url:
        problems.append("option base_url is required, e.g. base_url = \"http://127.0.0.1:8000/v1\"")
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        problems.append(f"concurrency={concurrency!r} must be an integer >= 1")
    if not isinstance(timeout_s, (int, float)) or isinstance(timeout_s, bool) or timeout_s <= 0:
        problems.append(f"timeout_s={timeout_s!r} must be a number > 0 (seconds)")
    if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
        problems.append(f"max_retries={max_retries!r} must be an integer >= 0")
    if extra_body is not None and not isinstance(extra_body, dict):
        problems.append(f"extra_body={extra_body!r} must be a table of request fields")
    if problems:
        raise SpecError("error: generation.options for backend \"openai\": " + "; ".join(problems))
