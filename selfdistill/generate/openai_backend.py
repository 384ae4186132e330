"""Generation through an OpenAI-compatible HTTP server (vLLM `vllm serve`, SGLang, llama.cpp's
`llama-server`), with the `openai` client (extra `selfdistill[openai]`).

    load_backend("openai", model="qwen-coder", chat=True,
                 options={"base_url": "http://127.0.0.1:8000/v1", "concurrency": 16})

Chat models use /v1/chat/completions (the SERVER applies the model's chat template); base models use
/v1/completions. Every request states the whole sampling chain, so no server default leaks in:
  top level    temperature, top_p, max_tokens (= max_new_tokens), seed (the sample's own), stop
  extra body   top_k (-1 when off: the "off" value vLLM, SGLang and llama.cpp all accept), min_p,
               repetition_penalty = 1.0 (vLLM and SGLang otherwise take it from the model's
               generation_config), samplers = ["temperature", "top_k", "top_p", "min_p"] (llama.cpp's
               chain order, which by default applies temperature last; others ignore the key: vLLM's
               request models allow extra fields and only log them), then `extra_body` from the options,
               which overrides any of these.
OpenAI's own hosted API rejects top_k/min_p/samplers: this backend is for self-hosted servers.
Order caveat: vLLM and SGLang apply min-p before top-p whatever is sent (see `vllm_backend`).

Requests run on a bounded thread pool (`concurrency` in flight at most). A connection error, timeout,
408/409/429 or 5xx (and a server-side abort) is retried up to `max_retries` times with exponential
backoff and jitter; any other error, or one that persists, raises `RequestFailed` naming the sample:
a failed request never becomes an empty sample. Results are yielded as they complete.
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

log = logging.getLogger(__name__)

LLAMACPP_SAMPLERS = ("temperature", "top_k", "top_p", "min_p")  # the SSD paper's order
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
        **unknown: Any,
    ) -> None:
        _check_options(unknown, base_url, concurrency, timeout_s, max_retries, extra_body)
        import openai  # lazily: the core never needs the client

        self.model, self.chat, self.base_url = model, chat, base_url
        self.api_key_env = api_key_env
        self.concurrency, self.timeout_s, self.max_retries = concurrency, float(timeout_s), max_retries
        self.extra_body = dict(extra_body or {})
        self._openai = openai
        # Local servers need no key; the client refuses None, so a placeholder stands in.
        self._client = openai.OpenAI(
            base_url=base_url, api_key=os.environ.get(api_key_env) or "EMPTY",
            timeout=self.timeout_s, max_retries=0,  # retries are ours: counted, logged, bounded
        )

    def generate(self, requests: Sequence[GenRequest], params: SamplingParams) -> Iterator[GenResult]:
        """One result per request, in completion order; `concurrency` requests in flight at most."""
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
            "concurrency": self.concurrency, "timeout_s": self.timeout_s, "max_retries": self.max_retries,
            "api_key_env": self.api_key_env, "api_key_set": bool(os.environ.get(self.api_key_env)),
            "extra_body": self.extra_body, "openai_client": self._openai.__version__,
        }

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
                        f"{attempts} times, last: {exc}; check the server (GET {self.base_url}/models), "
                        "or raise options.max_retries / timeout_s, or lower options.concurrency"
                    ) from None
                wait_s = _backoff_s(attempt, exc.retry_after_s)
                log.warning("%s#%d: %s; retry %d/%d in %.1fs", request.task_id, request.sample_idx,
                            exc, attempt + 1, self.max_retries, wait_s)
                time.sleep(wait_s)
        raise AssertionError("unreachable")

    def _call(self, request: GenRequest, params: SamplingParams) -> GenResult:
        openai = self._openai
        kwargs = request_kwargs(self.model, params, request.seed, self.extra_body)
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
                f"{exc.status_code}: {exc.message}; check options.model / base_url, and that the server "
                "accepts the extra body keys (top_k, min_p, repetition_penalty, samplers)"
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


def request_kwargs(model: str, params: SamplingParams, seed: int, extra_body: dict | None = None) -> dict:
    """The keyword arguments of one `create` call (prompt or messages excluded)."""
    body = {
        "top_k": params.top_k if params.top_k > 0 else -1,
        "min_p": params.min_p,
        "repetition_penalty": 1.0,
        "samplers": list(LLAMACPP_SAMPLERS),
    }
    body.update(extra_body or {})
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
            "api_key_env, concurrency, timeout_s, max_retries, extra_body"
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
